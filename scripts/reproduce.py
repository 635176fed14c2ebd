"""The paper's sampling experiments for one dataset, then their report (`make reproduce` runs this).

    python scripts/reproduce.py --dataset mnist --profile quick [--experiments failures,uniform]
                                [--seeds 0,1,2] [--launcher submitit_local] [-- overrides for every run...]

Each experiment of configs/sampling/<dataset>/ is one Hydra multirun (`sample.py -m sampling=<dataset>/<e>`),
which expands the config's own `hydra.sweeper.params` (the ten failure runs, the two ambivalent ones),
into one fixed sweep folder, runs/reproduce/<dataset>-<profile>, each job in its config's stable
`hydra.sweep.subdir`. Calling it again therefore lands every job in the folder it had: finished targets
are skipped, interrupted ones resume from their resume file. A run that cannot start (a model not in the
zoo) leaves its message in its folder and the others go on; the report (scripts/report.py) lists it
with the command that trains what is missing. The exit status is 1 when any run did not finish.

`--seeds 0,1,2` runs every experiment again with each further sampler seed on the same models, each seed in
its own sweep folder (<sweep>-seed<k>; seed 0 is the plain folder), so the confidence table shows the
between-seed spread; figures and diagnostics come from seed 0. `--seeds 1` runs seed 1 alone (a second
one-thread lane beside `--seeds 2`, say, once seed 0 is done); the report takes in every seed folder that
exists beside the sweep folder. Each call's wall time per experiment is added to its seed folder's
timings.json, which the report shows as the time per experiment.

Without overrides, each seed's finished runs are also entered in the seed ledger beside the report
(docs/report/<dataset>_<profile>_seeds.json: per target the confidence mean and std and the weights
digests of the models), so seeds sampled on other machines or days, once their ledger is committed,
join the confidence table of any later report whose runs drew from the same models.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.report import ORDER, ledger_file, main as report_main, seed_folder, seeds_beside  # noqa: E402


def experiments(dataset: str) -> list[str]:
    names = [f.stem for f in (ROOT / "configs" / "sampling" / dataset).glob("*.yaml")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def add_timing(runs: Path, experiment: str, seed: int, wall_s: float, rc: int) -> None:
    """Append one call's wall time to <runs>/timings.json (a rerun that skips finished runs adds its own
    few seconds; the report sums the calls)."""
    from lightning_modules.runinfo import code_version, write_json
    path = runs / "timings.json"
    runs.mkdir(parents=True, exist_ok=True)
    calls = json.loads(path.read_text()) if path.exists() else []
    calls.append({"experiment": experiment, "seed": seed, "wall_s": round(wall_s, 1), "exit": rc,
                  "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "code_version": code_version(),
                  "threads": os.environ.get("OMP_NUM_THREADS", "default")})
    write_json(path, calls)


def book(dataset: str, profile: str, folder: Path, seed: int, experiment: str, ledger: Path) -> None:
    """Enter one seed's finished runs of an experiment, and its calls' times, in the seed ledger (under a
    lock: lanes of other seeds write it too), so that they join later reports wherever the same models are."""
    import fcntl
    from lightning_modules.runinfo import write_json
    from scripts.report import expected_jobs, ledger_rows, read_job, read_timings
    from trex.analysis.seeds import load, merge
    jobs = [read_job(j, profile) for j in expected_jobs(dataset, folder, [experiment], [f"seed={seed}"] if seed else [])]
    calls = [c for c in read_timings(folder) if c["experiment"] == experiment and c.get("seed", 0) == seed]
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with open(ledger.parent / f".{ledger.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        write_json(ledger, merge(load(ledger, dataset, profile), ledger_rows(jobs, seed), calls))


def views(dataset: str, profile: str, runs: Path, todo: list[str], overrides) -> None:
    """The latent map and saliency figures (scripts/sample_views.py) of every finished run that has none yet;
    the report shows them. A run whose views fail is said so and the others go on."""
    from scripts.report import expected_jobs, read_job
    threads = os.environ.get("OMP_NUM_THREADS", "2")  # a one-thread lane (OMP_NUM_THREADS=1) keeps to one core
    for job in expected_jobs(dataset, runs, todo, overrides):
        job = read_job(job, profile)
        if job.done and not (job.folder / "views" / "latent_tsne.png").exists():
            cmd = [sys.executable, str(ROOT / "scripts" / "sample_views.py"), str(job.folder), "--threads", threads,
                   "--prior", "2000", "--overlay", "50", "--saliency", "4"]
            print("+", " ".join(cmd), flush=True)
            if subprocess.call(cmd, cwd=ROOT) != 0:
                print(f"reproduce: the views of {job.folder} failed; the report goes on without them", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--profile", default="quick", help="sample_profile: quick | paper")
    ap.add_argument("--sweep", type=Path, help="sweep folder (default: runs/reproduce/<dataset>-<profile>)")
    ap.add_argument("--experiments", default="", help="comma-separated (default: every config of the dataset)")
    ap.add_argument("--seeds", default="0", help="comma-separated sampler seeds (default 0); each further seed "
                    "runs every experiment again on the same models, in <sweep>-seed<k>")
    ap.add_argument("--launcher", default="", help="a Hydra launcher, e.g. submitit_local (default: basic, one by one)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "report", help="where the report goes")
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--no-views", action="store_true", help="skip the latent maps and saliency figures of finished runs")
    ap.add_argument("overrides", nargs="*", help="overrides for every run, e.g. zoo_profile=paper num_chains=4")
    a = ap.parse_args(argv)
    runs = a.sweep or Path(os.environ.get("RUNS_DIR", "runs")) / "reproduce" / f"{a.dataset}-{a.profile}"
    todo = [e for e in a.experiments.split(",") if e] or experiments(a.dataset)
    unknown = sorted(set(todo) - set(experiments(a.dataset)))
    if unknown:
        print(f"error: no sampling experiment {unknown[0]!r} for {a.dataset}; there are "
              f"{', '.join(experiments(a.dataset))}", file=sys.stderr)
        return 2
    try:
        seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"error: --seeds takes comma-separated integers, e.g. 0,1,2; got {a.seeds!r}", file=sys.stderr)
        return 2
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        print(f"error: --seeds takes distinct sampler seeds ≥ 0, e.g. 0,1,2 (0 is the plain sweep folder, whose runs "
              f"the report's figures show; 1 alone runs seed 1 only, e.g. in a second lane); got {a.seeds!r}",
              file=sys.stderr)
        return 2
    if any(o.split("=", 1)[0].lstrip("+") == "seed" for o in a.overrides):
        print("error: give sampler seeds with --seeds (each gets its own sweep folder), not a seed= override",
              file=sys.stderr)
        return 2
    failed = []
    for seed in sorted(seeds):  # seed by seed: seed 0's runs and views are complete before the next starts
        folder = seed_folder(runs, seed)
        extra = [] if seed == 0 else [f"seed={seed}"]  # seed 0 is sample.yaml's: earlier runs' configs stay equal
        for e in todo:
            cmd = [sys.executable, str(ROOT / "sample.py"), "-m", f"sampling={a.dataset}/{e}",
                   f"sample_profile={a.profile}", f"hydra.sweep.dir={folder}",
                   *([f"hydra/launcher={a.launcher}"] if a.launcher else []), *extra, *a.overrides]
            print("+", " ".join(cmd), flush=True)
            start = time.time()
            rc = subprocess.call(cmd, cwd=ROOT)
            add_timing(folder, e, seed, time.time() - start, rc)
            if not a.overrides:  # the ledger holds the configs' own runs only
                book(a.dataset, a.profile, folder, seed, e, ledger_file(a.out, a.dataset, a.profile))
            if rc != 0:
                failed.append(e if len(seeds) == 1 else f"{e} (seed {seed})")
        if seed == 0 and not a.no_views:
            start = time.time()
            views(a.dataset, a.profile, folder, todo, a.overrides)
            add_timing(folder, "views", seed, time.time() - start, 0)
    if not a.no_report:
        # this call's further seeds and, without overrides, those earlier calls (or other lanes) left beside
        # the sweep folder, so that a lane's SEEDS=1 and a later plain call report every seed that ran
        found = [] if a.overrides else seeds_beside(runs)
        others = [str(seed_folder(runs, s)) for s in sorted({*seeds, *found} - {0})]
        # this call's experiments and every one whose job folder an earlier call left (the folders the
        # configs' hydra.sweep.subdir name), so that EXPERIMENTS=x does not write a report of x alone;
        # not with overrides, which need not fit the other experiments' configs (left_out=3,4)
        from scripts.report import expected_jobs
        shown = todo if a.overrides else list(dict.fromkeys(
            j.experiment for j in expected_jobs(a.dataset, runs) if j.experiment in todo or j.folder.is_dir()))
        report_main(["--runs", str(runs), "--dataset", a.dataset, "--profile", a.profile, "--out", str(a.out),
                     "--experiments", ",".join(shown), *([f"--seed-runs={','.join(others)}"] if others else []),
                     *a.overrides])
    if failed:
        print(f"reproduce: {len(failed)} of {len(todo) * len(seeds)} experiment runs did not finish every run "
              f"({', '.join(failed)}); the report says what is missing", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
