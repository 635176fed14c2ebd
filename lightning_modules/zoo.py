"""The model zoo: every model one dataset's experiments need, trained once, found by name.

    python -m lightning_modules.zoo --dataset mnist --profile quick [--only classifier,vae] [--retrain 'gan*']
                                    [--rescore] [-- overrides...]

Layout: <zoo>/<profile>/<dataset>/<name>.ckpt plus index.json; each model trains in its own fixed run
folder (<zoo>/<profile>/<dataset>/runs/<name>), so an interrupted zoo resumes from the model's last
checkpoint, and finished models are skipped. `--retrain` trains finished models again; their run folder
resumes from its last checkpoint, so after raising a profile's max_epochs only the extra epochs are trained
(the index's wall time then adds both parts).

Training is bit-reproducible on CPU for the same code, torch version and thread count: each index entry
records `threads`, `torch` and the weights digest (`weights`) to retrain against (`--threads N`; a resumed
model matches too, as checkpoints carry the random state: lightning_modules/rngstate.py); runs
sampled from models with the same digests are the same models' seeds, whichever session trained them.

Each generator's FID and left-out share are scored by the zoo's full-data classifier, whose weights'
hash the report keeps. When that classifier is trained again, the zoo scores the generators it had
scored again at the end of the build; `--rescore` (no training) also scores those from before the hash.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lightning_modules.evaluate import classifier_stamp
from lightning_modules.runinfo import code_version, write_json
from trex.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def model_list(dataset: str) -> list[tuple[str, str]]:
    """(zoo name, train.py arguments) in training order: the full-data classifier first (FID needs it).
    The leave-one-class-out models are one experiment per kind with the class as a parameter."""
    models = [(n, f"{dataset}/{n}") for n in ("classifier", "lenet", "vae", "gan", "classifier_novel", "gan_novel",
                                              "ambivalent")]
    models += [(f"{kind}_without_{c}", f"{dataset}/{kind}_without left_out={c}")
               for kind in ("gan", "vae") for c in range(10)]
    return models + EXTRA.get(dataset, [])


# Domain adaptation (Sec. 4.8) lands in the target's folder: the MLP is the third labeler architecture,
# adda_source the LeNet baseline on the source digits, adda that baseline adapted to MNIST (it reads
# adda_source.ckpt, so it comes after it).
EXTRA = {"mnist": [("mlp", "mnist/mlp"), ("adda_source", "adda/source"), ("adda", "adda/adda")]}


def zoo_of(cfg) -> tuple[str, str, str]:
    """(root, profile, dataset) of the zoo a sample.py config draws its models from."""
    from omegaconf import OmegaConf
    return OmegaConf.select(cfg, "paths.zoo_dir") or "zoo", str(cfg.zoo_profile), str(cfg.data.dataset)


def zoo_dir(root, profile: str, dataset: str) -> Path:
    return Path(root) / profile / dataset


class MissingCheckpoint(UserError, FileNotFoundError):
    """A checkpoint name that is neither a file nor a model in the zoo folder."""


# what to run to get a model of each role, per dataset
_MAKE = {"classifier": "python train.py experiment={d}/classifier (or make demo)",
         "generator": "python -m lightning_modules.zoo --dataset {d} --only classifier,vae (a VAE; 'gan' for a GAN)",
         "typicality": "python -m lightning_modules.zoo --dataset {d} --only lenet"}


def train_command(name: str, profile: str, dataset: str) -> str | None:
    """The command that trains the zoo model `name` of a dataset (None if the zoo has no such model)."""
    args = dict(model_list(dataset)).get(name)
    if args is None:
        return None
    return (f"python -m lightning_modules.zoo --dataset {dataset} --profile {profile} --only {name} "
            f"(or python train.py experiment={args} profile={profile})")


def resolve_checkpoint(name: str, root, profile: str, dataset: str, role: str = "classifier") -> Path:
    """A checkpoint path, or a model name in this profile's and dataset's zoo folder
    (<zoo>/<profile>/<dataset>/<name>.ckpt): `gan` must never pick another dataset's GAN."""
    p = Path(name)
    if p.is_file():
        return p
    folder = zoo_dir(root, profile, dataset)
    cand = folder / f"{name}.ckpt"
    if cand.is_file():
        return cand
    have = sorted(f.stem for f in folder.glob("*.ckpt"))
    listing = f" (it has {', '.join(have)})" if have else " (empty or missing)"
    make = train_command(name, profile, dataset) or _MAKE.get(role, _MAKE["classifier"]).format(d=dataset)
    raise MissingCheckpoint(f"no {role} checkpoint {name!r}: not a file, and not a model in the zoo folder "
                            f"{folder}{listing}.\n  Make one: {make}; or pass a path, e.g. "
                            f"{'generator' if role == 'generator' else role}=runs/train/.../checkpoints/best.ckpt")


def load_index(folder: Path) -> dict:
    f = folder / "index.json"
    return json.loads(f.read_text()) if f.exists() else {"models": {}}


def save_entry(folder: Path, name: str, entry: dict | None = None, **fields) -> dict:
    """Write one model's entry (or some of its fields) into index.json as it is on disk now, not as it
    was when this command started: another zoo command may have added its own models since."""
    index = load_index(folder)
    if entry is not None:
        index["models"][name] = entry
    index["models"][name].update(fields)
    write_json(folder / "index.json", index)
    return index


def train_subprocess(experiment: str, run_dir: Path, profile: str, overrides: list[str]) -> int:
    """train.py on `experiment` ("mnist/gan_without left_out=3": the experiment and its own overrides)."""
    name, *own = experiment.split()
    cmd = [sys.executable, str(ROOT / "train.py"), f"experiment={name}", *own, f"profile={profile}",
           f"hydra.run.dir={run_dir}", *overrides]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def is_generator(name: str) -> bool:
    return name.startswith(("gan", "vae"))


def score_generator(entry: dict, checkpoint: Path, classifier: Path, data_dir=None) -> dict:
    """A finished generator's end-of-training report (FID, class mix, left-out share), computed again
    with `classifier` on its own data split."""
    from datamodules import ImageDataModule
    from lightning_modules.evaluate import generator_report
    from lightning_modules.loading import load_generator

    data_dir = data_dir or os.environ.get("DATA_DIR", "data")
    dm = ImageDataModule(entry["dataset"], data_dir, **{k: entry["data"].get(k) for k in ("include", "exclude")})
    return generator_report(load_generator(checkpoint), dm, str(classifier))


def stale_scores(index: dict, classifier: Path, unstamped: bool = False) -> list[str]:
    """Generators scored by another classifier than `classifier` (by its weights' hash); with
    `unstamped`, also those whose report names no classifier (scored before hashes were kept, or never)."""
    if not classifier.exists():
        return []
    current = classifier_stamp(classifier)["sha256"]
    out = []
    for name, e in index["models"].items():
        judge = ((e.get("fid") or {}).get("judge") or {}).get("sha256")
        if is_generator(name) and judge != current and (judge is not None or unstamped):
            out.append(name)
    return out


def rescore(dataset: str, profile: str = "quick", root="zoo", only=None, unstamped: bool = True,
            score_fn=score_generator) -> dict:
    """Score the zoo's generators again with its current full-data classifier, skipping those it
    already scored; the index is written after each, so an interruption loses nothing."""
    folder = zoo_dir(root, profile, dataset)
    index = load_index(folder)
    clf = folder / "classifier.ckpt"
    if not clf.exists():
        raise ValueError(f"no full-data classifier at {clf} to score with; train it first "
                         f"(python -m lightning_modules.zoo --dataset {dataset} --profile {profile} --only classifier)")
    todo = [n for n in stale_scores(index, clf, unstamped) if not only or n in only]
    for i, name in enumerate(todo, 1):
        print(f"[zoo] scoring {name} again with {clf} ({i}/{len(todo)})", flush=True)
        index = save_entry(folder, name, fid=score_fn(index["models"][name], folder / f"{name}.ckpt", clf))
    if not todo:
        print(f"[zoo] every generator is scored by the current {clf}", flush=True)
    return index


def build(dataset: str, profile: str = "quick", root="zoo", only=None, overrides=(), logger="wandb",
          train_fn=train_subprocess, retrain=(), score_fn=score_generator) -> dict:
    folder = zoo_dir(root, profile, dataset)
    folder.mkdir(parents=True, exist_ok=True)
    index = load_index(folder)
    names = dict(model_list(dataset))
    wanted = list(names) if not only else list(only)
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ValueError(f"unknown zoo models {unknown}; known: {list(names)}")
    clf = folder / "classifier.ckpt"
    for name in wanted:
        ckpt = folder / f"{name}.ckpt"
        entry = index["models"].get(name)
        again = any(fnmatch.fnmatchcase(name, pattern) for pattern in retrain)
        if entry and ckpt.exists() and not again:
            print(f"[zoo] {name}: done, skipping ({ckpt})", flush=True)
            continue
        run_dir = folder / "runs" / name
        extra = [f"logger={logger}", *overrides]
        if is_generator(name):
            extra.append(f"fid_classifier={clf}" if clf.exists() else "fid=false")
        # a resumed run continues the indexed one, so its time so far counts too
        earlier = entry["wall_time_s"] if entry and (run_dir / "checkpoints" / "last.ckpt").exists() else 0.0
        start = time.time()
        rc = train_fn(names[name], run_dir, profile, extra)
        if rc != 0:
            raise RuntimeError(f"training {name} failed (exit {rc}); its run folder {run_dir} keeps the last "
                               f"checkpoint, so running the zoo again resumes it")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        shutil.copyfile(metrics["best_checkpoint"], ckpt)
        index = save_entry(folder, name, {
            "name": name, "experiment": names[name], "dataset": dataset, "profile": profile,
            "data": {k: metrics["data"].get(k) for k in ("include", "exclude")}, "model": metrics["model"],
            "checkpoint": str(ckpt), "run_dir": str(run_dir), "metrics": metrics["metrics"],
            "fid": metrics.get("fid"), "epochs": metrics["epochs"], "wall_time_s": round(earlier + time.time() - start, 1),
            "code_version": code_version(),
            **{k: metrics.get(k) for k in ("threads", "torch", "weights")}})  # after every model: an interruption loses nothing
        print(f"[zoo] {name}: trained in {index['models'][name]['wall_time_s']} s -> {ckpt}", flush=True)
    if stale_scores(index, clf):  # the classifier was trained again after these generators were scored
        index = rescore(dataset, profile, root, unstamped=False, score_fn=score_fn)
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from datamodules import registry
    ap.add_argument("--dataset", default="mnist", choices=registry.names())
    ap.add_argument("--profile", default="quick", choices=["quick", "paper"])
    ap.add_argument("--root", default="zoo")
    ap.add_argument("--only", default=None, help="comma-separated zoo names, e.g. classifier,vae")
    ap.add_argument("--retrain", default="", help="comma-separated names or patterns to train again, e.g. 'gan*'")
    ap.add_argument("--rescore", action="store_true",
                    help="train nothing; score the generators again with the zoo's current classifier")
    ap.add_argument("--logger", default="wandb", choices=["wandb", "csv"])
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads each training uses (default: torch's, one per core). CPU results depend "
                         "on it: to retrain a recorded zoo bit for bit, give the `threads` its index.json shows")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    ap.add_argument("overrides", nargs="*", help="extra train.py overrides, e.g. trainer.max_epochs=1")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(f"{n:20s} experiment={e}" for n, e in model_list(a.dataset)))
        return
    only = a.only.split(",") if a.only else None
    if a.threads is not None:
        if a.threads < 1:
            sys.exit(f"error: --threads {a.threads}: give a positive number of threads, e.g. --threads 2")
        os.environ["OMP_NUM_THREADS"] = str(a.threads)  # train.py runs in a subprocess; torch reads it at start
    try:
        if a.rescore:
            rescore(a.dataset, a.profile, a.root, only)
            return
        build(a.dataset, a.profile, a.root, only, a.overrides, a.logger, retrain=[r for r in a.retrain.split(",") if r])
    except (ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
