"""The paper's sampling experiments for one dataset, then their report (`make reproduce` runs this).

    python scripts/reproduce.py --dataset mnist --profile quick [--experiments failures,uniform]
                                [--launcher submitit_local] [-- overrides for every run...]

Each experiment of configs/sampling/<dataset>/ is one Hydra multirun (`sample.py -m sampling=<dataset>/<e>`),
which expands the config's own `hydra.sweeper.params` (the ten failure runs, the two ambivalent ones),
into one fixed sweep folder, runs/reproduce/<dataset>-<profile>, each job in its config's stable
`hydra.sweep.subdir`. Calling it again therefore lands every job in the folder it had: finished targets
are skipped, interrupted ones resume from their resume file. A run that cannot start (a model not in the
zoo) leaves its message in its folder and the others go on; the report (scripts/report.py) lists it
with the command that trains what is missing. The exit status is 1 when any run did not finish.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.report import ORDER, main as report_main  # noqa: E402


def experiments(dataset: str) -> list[str]:
    names = [f.stem for f in (ROOT / "configs" / "sampling" / dataset).glob("*.yaml")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def views(dataset: str, profile: str, runs: Path, todo: list[str], overrides) -> None:
    """The latent map and saliency figures (scripts/sample_views.py) of every finished run that has none yet;
    the report shows them. A run whose views fail is said so and the others go on."""
    from scripts.report import expected_jobs, read_job
    for job in expected_jobs(dataset, runs, todo, overrides):
        job = read_job(job, profile)
        if job.done and not (job.folder / "views" / "latent_tsne.png").exists():
            cmd = [sys.executable, str(ROOT / "scripts" / "sample_views.py"), str(job.folder), "--threads", "2",
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
    failed = []
    for e in todo:
        cmd = [sys.executable, str(ROOT / "sample.py"), "-m", f"sampling={a.dataset}/{e}",
               f"sample_profile={a.profile}", f"hydra.sweep.dir={runs}",
               *([f"hydra/launcher={a.launcher}"] if a.launcher else []), *a.overrides]
        print("+", " ".join(cmd), flush=True)
        if subprocess.call(cmd, cwd=ROOT) != 0:
            failed.append(e)
    if not a.no_views:
        views(a.dataset, a.profile, runs, todo, a.overrides)
    if not a.no_report:
        report_main(["--runs", str(runs), "--dataset", a.dataset, "--profile", a.profile, "--out", str(a.out),
                     "--experiments", ",".join(todo), *a.overrides])
    if failed:
        print(f"reproduce: {len(failed)} of {len(todo)} experiments did not finish every run ({', '.join(failed)}); "
              f"the report says what is missing", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
