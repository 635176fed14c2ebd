"""The reproduction report: every sampling experiment of a dataset (configs/sampling/<dataset>/), read
from the sweep folder `make reproduce` fills, set beside the paper's numbers.

    python scripts/report.py --runs runs/reproduce/mnist-quick --dataset mnist --out docs/report
    -> docs/report/mnist.md (+ mnist_files/) and docs/report/mnist.html (self-contained)

The jobs expected are the sampling configs' own (a config's `hydra.sweeper.params` expanded, as
`sample.py -m` expands them), each in its stable folder `<runs>/<hydra.sweep.subdir>`. A job that has
not run, failed, or stopped half-way appears as a plain statement of what is missing (a model not in
the zoo: the command that trains it) and the command that runs it; the report never stops on one.
"""
from __future__ import annotations

import argparse
import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import lightning_modules.cli  # noqa: E402,F401  (registers the run_name resolver sample.yaml uses)
from trex.report import Report  # noqa: E402
from trex.results import SampleSet  # noqa: E402
from trex.summary import summary_row  # noqa: E402
from trex.targets import slug, target_specs  # noqa: E402

CONFIGS = ROOT / "configs"
ORDER = ["high_confidence", "ambiguous", "uniform", "ambivalent", "interpolation", "failures", "novel_class"]  # the paper's


@dataclass
class Job:
    experiment: str            # config file stem: ambiguous, failures, ...
    name: str                  # experiment_name: mnist/failures
    variant: list              # the sweeper overrides of this job, e.g. ["left_out=3"]
    subdir: str                # its folder in the sweep: hydra.sweep.subdir (failures/without_3)
    folder: Path
    cfg: object                # the job's config: as it ran (its config.yaml) or as composed
    targets: list = field(default_factory=list)
    sets: dict = field(default_factory=dict)   # target string -> SampleSet
    missing: list = field(default_factory=list)  # plain statements
    error: str | None = None
    unreadable: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.subdir

    @property
    def done(self) -> bool:
        return bool(self.targets) and len(self.sets) == len(self.targets)


def sweep_values(params) -> list[list[str]]:
    """Every combination of a config's `hydra.sweeper.params` ({key: "range(10)"}), as override lists."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    parser = OverridesParser.create()
    axes = []
    for key, value in (params or {}).items():
        o = parser.parse_overrides([f"{key}={value}"])[0]
        vals = list(o.sweep_string_iterator()) if o.is_sweep_override() else [str(o.value())]
        axes.append([f"{key}={v}" for v in vals])
    return [list(c) for c in itertools.product(*axes)]


def expected_jobs(dataset: str, runs: Path, experiments=None, overrides=()) -> list[Job]:
    from hydra import compose, initialize_config_dir
    files = sorted((CONFIGS / "sampling" / dataset).glob("*.yaml"),
                   key=lambda f: (ORDER.index(f.stem) if f.stem in ORDER else len(ORDER), f.stem))
    if not files:
        raise SystemExit(f"error: no sampling experiments for {dataset!r} in {CONFIGS / 'sampling'}")
    from hydra.core.override_parser.overrides_parser import OverridesParser
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    swept = {o.key_or_group: o.input_line.split("=", 1)[1] for o in parsed if o.is_sweep_override()}
    # hydra's own settings (launcher, its options) change where jobs run, not what they are
    plain = [o.input_line for o in parsed if not o.is_sweep_override() and not o.key_or_group.startswith(("hydra/", "hydra."))]
    given = {o.key_or_group for o in parsed if not o.is_sweep_override()}
    jobs = []
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS), job_name="report"):
        for f in files:
            if experiments and f.stem not in experiments:
                continue
            base = compose("sample", [f"sampling={dataset}/{f.stem}", *plain], return_hydra_config=True)
            # as Hydra does: the command line's sweeps (left_out=3,4) replace the config's own for their key
            params = {**(OmegaConf.select(base, "hydra.sweeper.params") or {}), **swept}
            params = {k: v for k, v in params.items() if k not in given}
            for variant in sweep_values(params):
                cfg = compose("sample", [f"sampling={dataset}/{f.stem}", *variant, *plain],
                              return_hydra_config=True)
                sub = str(cfg.hydra.sweep.subdir)
                jobs.append(Job(f.stem, cfg.experiment_name or f"{dataset}/{f.stem}", variant, sub, runs / sub, cfg))
    return jobs


def read_job(job: Job, profile: str) -> Job:
    """Load what the job's folder holds; say what is missing and why."""
    from lightning_modules.zoo import MissingCheckpoint, resolve_checkpoint, train_command, zoo_of
    ran = job.folder / "config.yaml"
    if ran.exists():  # the config the job ran with (models, targets, sizes)
        job.cfg = OmegaConf.load(ran)
    cfg = job.cfg
    job.targets = [str(t) for t in target_specs(cfg.get("targets"), cfg.get("target"))]
    for t in job.targets:
        sub = job.folder / slug(t)
        if (sub / "manifest.json").exists() and (sub / "samples.npz").exists() and not (sub / "resume.pt").exists():
            try:
                job.sets[t] = SampleSet.load(sub)
            except (OSError, ValueError, KeyError, TypeError) as e:  # a broken folder is reported, not fatal
                job.unreadable.append(f"{sub} could not be read ({type(e).__name__}: {str(e)[:120]}); delete it to sample {t} again")
    if job.done:
        return job
    zoo = zoo_of(cfg)
    for role in ("classifier", "generator"):
        try:
            resolve_checkpoint(str(cfg[role]), *zoo, role=role)
        except MissingCheckpoint:
            how = train_command(str(cfg[role]), cfg.zoo_profile, cfg.data.dataset) or "train it (see README, Training)"
            job.missing.append(f"the {role} `{cfg[role]}` is not in the zoo ({Path(zoo[0]) / zoo[1] / zoo[2]}); "
                               f"train it: `{how}`")
    err = job.folder / "error.txt"
    if err.exists() and not job.missing:  # a missing model says it better; anything else, as the job said it
        job.error = err.read_text().strip().splitlines()[0]
    left = len(job.targets) - len(job.sets)
    job.missing[:0] = job.unreadable
    if not job.missing:
        resume = any((job.folder / slug(t) / "resume.pt").exists() for t in job.targets) or \
            (job.folder / "resume.pt").exists()
        job.missing.append(f"{left} of {len(job.targets)} targets not sampled yet"
                           + (" (interrupted: a rerun resumes from its resume file)" if resume else ""))
    seed = int(cfg.get("seed") or 0)  # a further sampler seed's folder (make reproduce SEEDS=0,k)
    cmd = " ".join(["python sample.py", f"sampling={cfg.data.dataset}/{job.experiment}", *job.variant,
                    *([f"seed={seed}"] if seed else []), f"sample_profile={profile}", f"hydra.run.dir={job.folder}"])
    job.missing.append(f"then run it: `{cmd}` (or `make reproduce DATASET={cfg.data.dataset} PROFILE={profile}"
                       + (f" SEEDS=0,{seed}" if seed else "") + "`)")
    return job


# --- figures ---------------------------------------------------------------------------------------------

def _image(res, flat_index):
    img = res.images.reshape(-1, *res.images.shape[2:])[flat_index]
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


def best_draws_figure(sets: dict, title: str, per_row: int = 11) -> Figure | None:
    """The draw closest to each target, titled with the target and the confidences it names."""
    from trex.analysis.table import named_classes
    items = [(t, r) for t, r in sets.items() if r.images is not None]
    if not items:
        return None
    rows = -(-len(items) // per_row)
    cols = -(-len(items) // rows)  # balanced rows: 20 targets (two runs of 10) are 2 × 10, not 11 + 9
    fig = Figure(figsize=(1.25 * cols + 0.3, 1.75 * rows + 0.4))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    for ax in axes:
        ax.set_axis_off()
    for ax, (t, res) in zip(axes, items):
        i = int(np.argmin(res.distance().reshape(-1)))
        classes = [int(c) for c in res.meta.get("classes", range(res.probs.shape[-1]))]
        p = res.probs.reshape(-1, res.probs.shape[-1])[i]
        named = named_classes(res)[:3]
        ax.imshow(_image(res, i), cmap="gray", vmin=0, vmax=255)
        ax.set_title(t.replace("ambiguous:", "amb ") + "\n" + ", ".join(f"{c}: {p[classes.index(c)]:.2f}" for c in named),
                     fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


# --- the report ----------------------------------------------------------------------------------------------

DIAG_COLUMNS = ["target", "draws", "confidence (mean ± std)", "within 0.1", "typical", "accept", "R-hat (conf)",
                "R-hat (latents)", "ESS (conf)", "divergences", "stuck chains", "wall s"]


def diagnostics_rows(job: Job) -> list[dict]:
    out = []
    for t in job.targets:
        if t not in job.sets:
            out.append({"target": t, "draws": "not sampled"})
            continue
        r = summary_row(job.sets[t])
        out.append({"target": t, "draws": r["samples"],
                    "confidence (mean ± std)": ", ".join(f"{c}: {v}" for c, v in r["confidence"].items()),
                    "within 0.1": f"{r['near_0.1']:.3f}", "typical": "-" if r["typical"] is None else f"{r['typical']:.3f}",
                    "accept": f"{r['accept']:.2f}", "R-hat (conf)": f"{r['confidence_rhat_max']:.2f}",
                    "R-hat (latents)": f"{r['rhat_max']:.2f}", "ESS (conf)": f"{r['confidence_ess_bulk_min']:.0f}",
                    "divergences": r["divergences"], "stuck chains": len(r["stuck_chains"]), "wall s": f"{r['wall_s']:.0f}"})
    return out


def job_wall(job: Job) -> float:
    """The job's sampling time: a population's targets share one run, so its longest (each carries the whole)."""
    walls = [float(r.meta.get("wall_time_s", 0)) for r in job.sets.values()]
    if not walls:
        return 0.0
    return max(walls) if job.cfg.get("population") else sum(walls)


def pair_section(r: Report, jobs: list[Job], dataset: str, class_names) -> None:
    from trex.analysis.ambiguity import (ambiguity_matrix_figure, confidence_matrix, confidence_matrix_figure,
                                         count_found, pair_quality)
    from trex.analysis.paper_numbers import PAIRS_FOUND
    for job in jobs:
        sets = list(job.sets.values())
        if not sets:
            continue
        rows = [pair_quality(s) for s in sets]
        k = len(class_names) if class_names else 10
        if job.experiment == "ambiguous":
            r.add_text(f"Pairs found (both means in [0.4, 0.6], ≥ 90 % of draws within 0.1, confidence R-hat ≤ 1.1): "
                       f"**{count_found(rows)} of {len(rows)}** sampled (of 45); paper: {PAIRS_FOUND.get(dataset, '-')} of 45.")
            r.add_figure(confidence_matrix_figure(confidence_matrix(rows, k), class_names),
                         caption=f"{job.name}: mean confidences of the found pairs")
            r.add_figure(ambiguity_matrix_figure(sets, k, class_names), caption=f"{job.name}: one draw per found pair")
        else:
            who = job.cfg.classifier
            r.add_text(f"Classifier `{who}`: **{count_found(rows)} of {len(rows)}** pairs i vs i+1 found. Paper: with "
                       f"the ambivalent classifier all 10; with a normal classifier, ambiguous sampling from a GAN "
                       f"rarely succeeds.")
        r.add_table([{"pair": f"{a} vs {b}", "mean": f"{q['mean_i']:.3f}, {q['mean_j']:.3f}",
                      "within 0.1": f"{q['within_0.1']:.3f}", "R-hat (conf)": f"{q['conf_rhat']:.2f}",
                      "found": "yes" if q["found"] else "no"} for q in rows for a, b in [q["pair"]]],
                    ["pair", "mean", "within 0.1", "R-hat (conf)", "found"], caption=f"{job.label}: pairs")


def modes_section(r: Report, job: Job) -> None:
    from trex.analysis.modes import find_modes, modes_figure
    for t, res in job.sets.items():
        if res.images is None:
            continue
        imgs = res.images.reshape(-1, *res.images.shape[2:])
        m = find_modes(imgs.reshape(len(imgs), -1) / 255.0)
        r.add_text(f"`{t}`: {m['k']} recurring mode{'s' if m['k'] > 1 else ''} among {len(imgs)} draws (KMeans on "
                   f"pixels, k by silhouette): shares {', '.join(f'{s:.0%}' for s in m['shares'])}.")
        r.add_figure(modes_figure(imgs, m, title=f"{t} modes"), caption=f"{job.label}: one draw per mode")


def status(job: Job) -> str:
    """One short phrase for the status table; the experiment's section says the rest."""
    if job.done:
        return "done"
    models = [m.split("`")[1] for m in job.missing if m.startswith("the ") and "not in the zoo" in m]
    if models:
        return "model missing: " + ", ".join(models)
    if job.error:
        return "failed (see below)"
    return "not run" if not job.sets else "incomplete"


def model_rows(jobs: list[Job]) -> list[dict]:
    """One row per zoo model the jobs name (classifier, generator), from the zoo's index.json: how it was
    trained and how good it is, so a weak generator behind a weak result is visible in the report."""
    from lightning_modules.zoo import load_index, zoo_dir, zoo_of
    uses, rows, indexes = {}, [], {}
    for j in jobs:
        zoo = zoo_dir(*zoo_of(j.cfg))
        for role in ("classifier", "generator"):
            uses.setdefault((zoo, str(j.cfg[role])), set()).add(role)
    for (zoo, name), roles in sorted(uses.items(), key=lambda kv: str(kv[0])):
        if zoo not in indexes:
            indexes[zoo] = load_index(zoo).get("models", {})
        m = indexes[zoo].get(name)
        if m is None:
            rows.append({"model": name, "role": ", ".join(sorted(roles)), "status": f"not in {zoo}"})
            continue
        metrics, fid = m.get("metrics") or {}, m.get("fid") or {}
        acc = metrics.get("test/acc")
        rows.append({"model": name, "role": ", ".join(sorted(roles)), "status": "trained",
                     "data": ", ".join(f"{k} {v}" for k, v in (m.get("data") or {}).items() if v) or "all classes",
                     "epochs": m.get("epochs", "-"), "train min": f"{m['wall_time_s'] / 60:.1f}" if m.get("wall_time_s") else "-",
                     "test acc": f"{acc:.3f}" if acc is not None else "-",
                     "FID (classifier features)": f"{fid['fid_classifier']:.1f}" if fid.get("fid_classifier") else "-",
                     "share outside its classes": (f"{fid['share_outside_training_classes']:.3f}"
                                                   if fid.get("share_outside_training_classes") is not None else "-"),
                     "code": m.get("code_version", "-"), "threads": m.get("threads") or "-",
                     "weights": m.get("weights") or "-"})
    return rows


MODEL_COLUMNS = ["model", "role", "status", "data", "epochs", "train min", "test acc", "FID (classifier features)",
                 "share outside its classes", "code", "threads", "weights"]


def models_section(r: Report, jobs: list[Job]) -> None:
    rows = model_rows(jobs)
    if rows:
        r.add_section("Models")
        r.add_text("The zoo models the runs use (`zoo/<profile>/<dataset>/index.json`). FID is computed in the "
                   "zoo classifier's feature space, so it compares generators of one dataset, not with the paper's "
                   "Inception FID; the share outside its classes is the part of a generator's draws the zoo "
                   "classifier puts outside the classes it was trained on. Code, torch threads and the weights "
                   "digest are what retraining a model bit for bit takes and what to check it against (`python -m "
                   "lightning_modules.zoo --threads N`); older entries did not record the last two.")
        r.add_table(rows, MODEL_COLUMNS, caption="models")


def testset_rows(baseline: dict | None, dataset: str, jobs: list[Job]) -> list[dict]:
    """The test set's answers to the two questions sampling answers (Sec. 4.10), ours and the paper's,
    beside what the sampling runs found for the same questions."""
    from trex.analysis.ambiguity import count_found, pair_quality
    from trex.analysis.paper_numbers import TESTSET
    paper = TESTSET.get(dataset, {})
    amb = [pair_quality(s) for j in jobs if j.experiment == "ambiguous" for s in j.sets.values()]
    fails = [s for j in jobs if j.experiment == "failures" for s in j.sets.values()]
    # a failures target is class:c, so its ideal is one-hot at c's output
    confident = sum(float(s.probs[..., int(np.argmax(s.ideal))].mean()) >= 0.9 for s in fails)
    b = baseline or {}
    amb_b, mis_b = b.get("ambiguous") or {}, b.get("misclassified") or {}
    return [{"question": "ambiguous: two classes both in [0.4, 0.6]",
             "test set (ours)": f"{amb_b['count']} examples, {len(amb_b.get('pairs', {}))} pairs" if amb_b else "not computed",
             "test set (paper)": (f"{paper['ambiguous']} examples, {paper['ambiguous_pairs']} pairs"
                                  if "ambiguous" in paper else "-"),
             "sampling (ours)": f"{count_found(amb)} of 45 pairs found" if amb else "not run"},
            {"question": "confidently wrong: top class ≥ 0.85 and wrong (test set); a left-out class at mean ≥ 0.9 "
                         "(sampling, failures)",
             "test set (ours)": f"{mis_b['count']} examples" if mis_b else "not computed",
             "test set (paper)": f"{paper['confident_misclassified']} examples" if paper else "-",
             "sampling (ours)": f"{confident} of {len(fails)} classes run (of 10)" if fails else "not run"}]


def testset_section(r: Report, dataset: str, jobs: list[Job], path: Path | None = None) -> None:
    import json
    path = Path(path or ROOT / "docs" / "results" / f"testset_baseline_{dataset}.json")
    baseline = json.loads(path.read_text()) if path.exists() else None
    r.add_section("Test set beside sampling")
    r.add_text("What the real test set alone shows for the questions sampling asks (paper Sec. 4.10), "
               + (f"from `{baseline['command']}` (classifier `{baseline['classifier']}`, {baseline['n']} test images)"
                  + baseline_pairing(baseline, jobs) if baseline else
                  f"not computed yet: `python scripts/testset_baseline.py --dataset {dataset}`."))
    r.add_table(testset_rows(baseline, dataset, jobs), ["question", "test set (ours)", "test set (paper)", "sampling (ours)"],
                caption="test set beside sampling")
    png = path.with_suffix(".png")
    if baseline and png.exists():
        r.add_figure(png, caption="the test set's ambiguous examples and confident misclassifications")


def baseline_pairing(baseline: dict, jobs: list[Job]) -> str:
    """Whether the test-set baseline scored the weights the runs' classifier of the same name had (the
    digests in the runs' models.json): a retrained classifier makes other counts."""
    name = Path(baseline["classifier"]).stem
    used = set()
    for j in jobs:
        rec = recorded_models(j.folder)
        if j.sets and rec and str(j.cfg.classifier) == name:
            used.add(rec[0].get("classifier"))
    if not used:
        return "."
    if "weights" not in baseline:
        return ("; it does not record which weights it scored, so it may be of another training of that "
                "classifier than the runs used: run its command again.")
    if used == {baseline["weights"]}:
        return f"; the same weights as the runs' classifier (digest {baseline['weights']})."
    return (f"; **of other weights than the runs' classifier** (digest {baseline['weights']}; the runs: "
            f"{', '.join(sorted(map(str, used)))}), so its counts are not this classifier's: run its command again.")


def views_section(r: Report, job: Job, saliency: int = 3) -> None:
    """The latent map and a few saliency figures, where scripts/sample_views.py has drawn them for this run
    (<run>/views/; they need the models, which the report itself never loads)."""
    views = job.folder / "views"
    if (views / "latent_tsne.png").exists():
        r.add_figure(views / "latent_tsne.png", caption=f"{job.label}: t-SNE of prior draws by predicted class, "
                                                         "the run's draws on top (App. D)")
    for png in sorted(views.glob("saliency_*.png"))[:saliency]:
        r.add_figure(png, caption=f"{job.label}: SmoothGrad saliency, {png.stem[len('saliency_'):]}")


def read_timings(folder: Path) -> list[dict]:
    import json
    path = folder / "timings.json"
    return json.loads(path.read_text()) if path.exists() else []


def reported_calls(jobs: list[Job], calls) -> list[dict]:
    """The timings.json calls of the experiments the jobs cover (and their views)."""
    wanted = {j.experiment for j in jobs} | {"views"}
    return [c for c in calls if c["experiment"] in wanted]


def timing_rows(jobs: list[Job], calls: list[dict]) -> list[dict]:
    """Time per experiment: the wall time of reproduce's calls (each seed folder's timings.json; every call
    summed: a rerun that skips finished runs adds its few seconds), one column per sampler seed, beside the
    sampling time the first seed's runs record. Calls of experiments the jobs do not cover are left out."""
    wanted = list(dict.fromkeys(j.experiment for j in jobs)) + ["views"]
    calls = reported_calls(jobs, calls)
    seeds = sorted({c.get("seed", 0) for c in calls})
    rows = []
    for e in wanted:
        mine, ejobs = [c for c in calls if c["experiment"] == e], [j for j in jobs if j.experiment == e]
        if not mine and not ejobs:
            continue
        row = {"experiment": e, "calls": len(mine) or "-"}
        for seed in seeds:
            walls = [c["wall_s"] for c in mine if c.get("seed", 0) == seed]
            row[f"seed {seed}: command min"] = f"{sum(walls) / 60:.1f}" if walls else "not timed"
        row["sampling min (first seed's runs)"] = f"{sum(job_wall(j) for j in ejobs) / 60:.1f}" if ejobs else "-"
        rows.append(row)
    if calls:
        total = {"experiment": "**total**", "calls": len(calls)}
        for seed in seeds:
            total[f"seed {seed}: command min"] = f"**{sum(c['wall_s'] for c in calls if c.get('seed', 0) == seed) / 60:.1f}**"
        total["sampling min (first seed's runs)"] = f"{sum(job_wall(j) for j in jobs) / 60:.1f}"
        rows.append(total)
    return rows


def seed_folder(runs: Path, seed: int) -> Path:
    """The sweep folder of one sampler seed: the plain folder for seed 0 (sample.yaml's), <sweep>-seed<k> else."""
    return runs if seed == 0 else runs.with_name(f"{runs.name}-seed{seed}")


def folder_seed(folder: Path) -> int | None:
    """The sampler seed seed_folder named `folder` after (None for a folder it did not name)."""
    found = re.search(r"-seed(\d+)$", folder.name)
    return int(found.group(1)) if found else None


def seeds_beside(runs: Path) -> list[int]:
    """The further sampler seeds whose sweep folders (as seed_folder names them) exist beside `runs`."""
    seeds = {folder_seed(f) for f in runs.parent.glob(f"{runs.name}-seed*")}
    return sorted(s for s in seeds if s and seed_folder(runs, s).is_dir())


def _sweep_of(job: Job) -> Path:
    """The sweep folder a job's folder sits in (its subdir taken off)."""
    folder = job.folder
    for _ in Path(job.subdir).parts:
        folder = folder.parent
    return folder


def ledger_file(out: Path, dataset: str, profile: str) -> Path:
    """Where make reproduce keeps a dataset's seed ledger: beside its report."""
    return Path(out) / f"{dataset}_{profile}_seeds.json"


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def recorded_models(folder: Path) -> tuple[dict, str] | None:
    """({role: weights digest}, code version) from the models.json sample.py wrote in a run folder,
    or None where the folder has none (a run from before runs recorded their models)."""
    import json
    path = folder / "models.json"
    if not path.exists():
        return None
    rec = json.loads(path.read_text())
    return ({role: v.get("weights") for role, v in rec.items() if isinstance(v, dict)},
            str(rec.get("code_version", "unknown")))


def group_key(job: Job) -> str:
    """A job's experiment in the confidence table (the ambivalent check: one row group per classifier)."""
    return job.name if job.experiment != "ambivalent" else f"{job.name} ({job.cfg.classifier})"


def job_models(job: Job) -> dict | None:
    """{role: weights digest} of the models a job's draws came from: its folder's models.json (what
    sample.py recorded), else the zoo's current checkpoints of its config (None where one is missing)."""
    from lightning_modules.zoo import MissingCheckpoint, resolve_checkpoint, zoo_of
    from trex.safeload import CheckpointError, read, weights_digest
    rec = recorded_models(job.folder)
    if rec:
        return rec[0]
    try:
        return {role: weights_digest(read(resolve_checkpoint(str(job.cfg[role]), *zoo_of(job.cfg), role=role), role))
                for role in ("classifier", "generator")}
    except (MissingCheckpoint, CheckpointError):
        return None


def ledger_rows(jobs: list[Job], seed: int) -> list[dict]:
    """The seed ledger's rows of one seed's finished jobs that recorded their models (models.json)."""
    from trex.analysis.seeds import row
    from trex.analysis.table import run_stats
    rows = []
    for j in jobs:
        rec = recorded_models(j.folder) if j.done else None
        if rec:
            rows += [row(seed, group_key(j), j.subdir, run_stats(res), *rec) for res in j.sets.values()]
    return rows


def build(jobs: list[Job], dataset: str, profile: str, runs: Path, seed_jobs=(), calls=(), ledger=None,
          ledger_path=None, baseline=None) -> Report:
    """seed_jobs: the same experiments' jobs run with further sampler seeds (one list per seed); their draws
    join the confidence table only. calls: reproduce's timings.json entries of every seed folder. ledger:
    the seed ledger (trex.analysis.seeds); its rows of seeds not run here join the confidence table where
    they drew from the models the runs here did."""
    from trex.analysis.seeds import as_stats, joining
    from datamodules.sources import CLASS_NAMES
    from trex.analysis.table import COLUMNS, confidence_table
    names = CLASS_NAMES.get(dataset)
    names = list(names) if names else None
    r = Report(f"Bayes-TrEx experiments: {dataset} ({profile} profile)")
    experiments = list(dict.fromkeys(j.experiment for j in jobs))
    done = sum(j.done for j in jobs)
    r.add_section("Status")
    r.add_text(f"Runs read from `{runs}`: **{done} of {len(jobs)}** runs complete, "
               f"{sum(len(j.sets) for j in jobs)} of {sum(len(j.targets) for j in jobs)} targets sampled. "
               f"`make reproduce DATASET={dataset} PROFILE={profile}` runs or resumes the rest.")
    r.add_table([{"experiment": j.name, "run": j.label, "targets": f"{len(j.sets)} / {len(j.targets)}",
                  "sampling wall s": f"{job_wall(j):.0f}" if j.sets else "-",
                  "draws per target": (f"{next(iter(j.sets.values())).num_chains} chains × "
                                       f"{next(iter(j.sets.values())).num_samples}") if j.sets else "-",
                  "status": status(j)}
                 for j in jobs], ["experiment", "run", "targets", "draws per target", "sampling wall s", "status"],
                caption="every run of every experiment")
    for more in seed_jobs:
        if more:
            r.add_text(f"Sampler seed {more[0].cfg.seed} (`{_sweep_of(more[0])}`, its draws join the confidence "
                       f"table only): **{sum(j.done for j in more)} of {len(more)}** runs complete.")
    live = {0, *(int(more[0].cfg.seed) for more in seed_jobs if more)}
    wanted = {group_key(j) for j in jobs}
    booked, left = joining(ledger, live, {j.subdir: job_models(j) for j in jobs}) if ledger else ([], [])
    booked = [b for b in booked if b["experiment"] in wanted]
    here = {j.subdir for j in jobs}
    left = [statement for job, statement in left if job in here]
    for seed in sorted({b["seed"] for b in booked}):
        mine = [b for b in booked if b["seed"] == seed]
        runs_of = {b["job"] for b in mine}
        codes = sorted({b["code_version"] for b in mine})
        r.add_text(f"Sampler seed {seed}, from the seed ledger `{ledger_path or 'seeds.json'}` (its run folders "
                   f"are not here; code {', '.join(codes)}): **{len(runs_of)} of {len(jobs)}** runs, "
                   f"{len(mine)} targets, each on the same models as the runs here (the weights digests of "
                   "classifier and generator agree); they join the confidence table and the time per experiment.")
        calls = [*calls, *(c for c in ledger.get("calls", []) if c.get("seed", 0) == seed)]
    if left:
        r.add_text(f"Left out of the confidence table: {len(left)} ledger rows, because "
                   + "; ".join(left[:6]) + (f"; and {len(left) - 6} more" if len(left) > 6 else "") + ".")
    timings = timing_rows(jobs, list(calls))
    if timings:
        used = reported_calls(jobs, calls)
        r.add_section("Time per experiment")
        r.add_text("Wall time of `make reproduce`'s calls per experiment (start-up, sampling, figures, W&B; every "
                   "call summed, from each seed folder's `timings.json`), beside the sampling time the runs record"
                   + (f"; {len(used)} calls, code {', '.join(sorted({str(c.get('code_version', '?')) for c in used}))}, "
                      f"torch threads {', '.join(sorted({str(c.get('threads', '?')) for c in used}))}." if used else "."))
        r.add_table(timings, list(timings[0]), caption="time per experiment")
    models_section(r, jobs)
    testset_section(r, dataset, jobs, baseline)
    groups = {}
    for j in [*jobs, *itertools.chain.from_iterable(seed_jobs)]:
        if j.sets:
            groups.setdefault(group_key(j), []).extend(j.sets.values())
    for b in booked:
        groups.setdefault(b["experiment"], []).append(as_stats(b))
    if groups:
        rows = confidence_table(groups)
        seeds = max(row["seeds"] for row in rows)
        r.add_section("Confidence beside the paper")
        r.add_text("Mean ± std of the target confidences over each run's kept draws, beside the paper's Tables 2 "
                   "and 9-11 where the notes give them; "
                   + ("one sampler seed here (`make reproduce SEEDS=0,1,2` adds more)." if seeds == 1 else
                      f"up to {seeds} sampler seeds on the same models: the mean over seeds of each run's mean ± "
                      "std, and the spread (std over seeds of the per-run means)."))
        hide = ("seed_spread", "per_seed") if seeds == 1 else ("per_seed",)
        r.add_table(rows, [c for c in COLUMNS if c not in hide], caption="confidence table")
    for e in experiments:
        ejobs = [j for j in jobs if j.experiment == e]
        r.add_section(ejobs[0].name)
        for j in ejobs:
            if not j.done:
                r.add_text(f"**{j.label} is incomplete.** " + " ".join(
                    s[0].upper() + s[1:] + "." for s in ([j.error] if j.error else []) + j.missing))
        if e in ("ambiguous", "ambivalent"):
            pair_section(r, ejobs, dataset, names)
        if e == "uniform":
            for j in ejobs:
                modes_section(r, j)
        if e != "ambiguous":
            sets = {(t if len(ejobs) == 1 else f"{j.label.split('/')[-1]} {t}"): s for j in ejobs
                    for t, s in j.sets.items()}
            fig = best_draws_figure(sets, f"{ejobs[0].name}: the draw closest to each target")
            if fig is not None:
                r.add_figure(fig, caption=f"{ejobs[0].name}: best draw per target")
        for j in ejobs:
            views_section(r, j)
        for j in ejobs:
            if j.sets:
                r.add_table(diagnostics_rows(j), DIAG_COLUMNS,
                            caption=f"{j.label}: diagnostics (sampling wall time {job_wall(j):.0f} s)")
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, type=Path, help="the sweep folder (make reproduce: runs/reproduce/<dataset>-<profile>)")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "report")
    ap.add_argument("--profile", default="quick", help="the sample_profile the runs used (for the commands it prints)")
    ap.add_argument("--experiments", default="", help="comma-separated config names (default: every one)")
    ap.add_argument("--seed-runs", default="", help="comma-separated sweep folders of the same experiments with "
                    "other sampler seeds (make reproduce SEEDS=0,1,2: <sweep>-seed1,...); they join the confidence table")
    ap.add_argument("--ledger", type=Path, help="the seed ledger whose other seeds join the confidence table "
                    "(default: <out>/<dataset>_<profile>_seeds.json, where make reproduce keeps it; not with overrides)")
    ap.add_argument("--baseline", type=Path, help="the test-set baseline's JSON (default: "
                    "docs/results/testset_baseline_<dataset>.json, as scripts/testset_baseline.py writes it)")
    ap.add_argument("overrides", nargs="*", help="overrides the sweep was run with (e.g. zoo_profile=paper)")
    a = ap.parse_args(argv)
    wanted = [e for e in a.experiments.split(",") if e]
    jobs = [read_job(j, a.profile) for j in expected_jobs(a.dataset, a.runs, wanted, a.overrides)]
    seed_jobs, calls = [], read_timings(a.runs)
    for folder in (Path(f) for f in a.seed_runs.split(",") if f):
        if not folder.is_dir():
            raise SystemExit(f"error: --seed-runs folder {folder} does not exist (run make reproduce SEEDS=... first)")
        seed = folder_seed(folder)
        if seed is None:
            raise SystemExit(f"error: --seed-runs folder {folder} is not named <sweep>-seed<k> (as make reproduce "
                             "SEEDS=0,k names it), so its sampler seed is unknown")
        more = [*a.overrides, f"seed={seed}"]
        seed_jobs.append([read_job(j, a.profile) for j in expected_jobs(a.dataset, folder, wanted, more)])
        calls += read_timings(folder)
    from trex.analysis.seeds import load
    path = a.ledger or ledger_file(a.out, a.dataset, a.profile)
    ledger = None if a.overrides else load(path, a.dataset, a.profile)  # overrides: other runs than the ledger's
    md, page = build(jobs, a.dataset, a.profile, a.runs, seed_jobs, calls, ledger,
                     _shown(path), a.baseline).write(a.out, a.dataset)
    done = sum(j.done for j in jobs)
    print(f"report: {md} and {page}: {done} of {len(jobs)} runs complete")
    for j in jobs:
        if not j.done:
            print(f"  missing {j.label}: " + "; ".join(([j.error] if j.error else []) + j.missing[:-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
