"""The quantitative table over sampler seeds, from committed seed ledgers alone (no run folders needed):

    python scripts/seed_table.py --dataset mnist docs/results/seeds-mnist docs/results/seeds-mnist-ambiguity \
        --out docs/results/seeds_mnist.md

Each argument is a seed ledger (`<dataset>_<profile>_seeds.json`) or a folder holding one, e.g. the `--out`
folders of `scripts/reproduce.py` runs in different sessions. Rows are grouped by experiment and by the
weights digests of the models they drew from (trex.analysis.seeds.by_models), so a run's seeds are
only pooled when they drew from the same models; its mean ± std, between-seed spread and per-seed
numbers stand beside the paper's (trex.analysis.table). Runs with fewer than --min-seeds seeds are listed
as such.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.report import ORDER, expected_jobs, ledger_file  # noqa: E402
from trex.analysis.seeds import by_models, load  # noqa: E402
from trex.analysis.table import confidence_table  # noqa: E402
from trex.summary import markdown_table  # noqa: E402

COLUMNS = ["experiment", "target", "models", "seeds", "draws", "confidence", "seed_spread", "paper"]


def ledger_path(p: Path, dataset: str, profile: str) -> Path:
    """A ledger file as given, or the one scripts/reproduce.py keeps in a folder (its --out)."""
    p = ledger_file(p, dataset, profile) if p.is_dir() else p
    if not p.is_file():
        raise FileNotFoundError(f"no seed ledger at {p}: give a ledger file or the --out folder of a "
                                f"scripts/reproduce.py run (it writes {ledger_file('.', dataset, profile).name} there)")
    return p


def base(experiment: str) -> str:
    """The sampling config an experiment's rows came from: "mnist/ambivalent (classifier)" -> "ambivalent"."""
    return experiment.split("/", 1)[-1].split(" ")[0]


def rank(experiment: str) -> int:
    return ORDER.index(base(experiment)) if base(experiment) in ORDER else len(ORDER)


def configured(dataset: str) -> list[tuple[str, str]]:
    """(experiment, job) of every run the dataset's sampling configs define (configs/sampling/<dataset>/,
    sweeps expanded: failures -> failures/without_0 ... without_9), in the paper's order."""
    return [(j.experiment, j.subdir) for j in expected_jobs(dataset, Path("runs"))]


def table_rows(ledgers: list[dict]) -> list[dict]:
    """The confidence table's rows of every experiment and model set, in the paper's order."""
    rows = []
    for experiment, models, stats in sorted(by_models(ledgers), key=lambda g: rank(g[0])):
        label = ", ".join(f"{role} {digest[:8]}" for role, digest in sorted(models.items()))
        rows += [{**r, "models": label} for r in confidence_table({experiment: stats})]
    return rows


def markdown(rows: list[dict], sources: list[Path], command: str, min_seeds: int, expected=(), booked=()) -> str:
    """expected: (experiment, job) of every run the configs define; booked: the jobs the ledgers have rows
    of. An experiment is complete when each of its jobs is booked and each of its targets has min_seeds."""
    short = [r for r in rows if r["seeds"] < min_seeds]
    unbooked = [(e, job) for e, job in expected if job not in set(booked)]
    shown = {base(r["experiment"]) for r in rows}
    experiments = list(dict.fromkeys([*(e for e, _ in expected), *shown]))
    incomplete = {base(r["experiment"]) for r in short} | {e for e, _ in unbooked}
    complete = [e for e in experiments if e in shown and e not in incomplete]
    unbooked = [job for _, job in unbooked]
    lines = [
        "# Confidence table over sampler seeds", "",
        f"From the seed ledgers {', '.join(f'`{p}`' for p in sources)}; `{command}`.", "",
        "Each row pools the seeds of one target that drew from the same models (weights digests in the models "
        "column); confidence is the mean over seeds of each run's mean ± the mean of each run's std, "
        "seed_spread the std over seeds of the per-run means, paper the paper's mean ± std over its 10 runs.", "",
        f"**{len(rows) - len(short)} of {len(rows)} targets in the ledgers have at least {min_seeds} seeds; "
        f"experiments complete at {min_seeds} seeds: {len(complete)} of {len(experiments)}** "
        f"({', '.join(complete) or 'none'})"
        + (f"; runs with no seed in any ledger: {', '.join(unbooked)}" if unbooked else "") + ".", "",
        markdown_table(rows, COLUMNS), "",
    ]
    if short:
        lines += [f"Fewer than {min_seeds} seeds: " + "; ".join(
            f"{r['experiment']} {r['target']} ({r['seeds']})" for r in short) + ".", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ledgers", nargs="+", type=Path, help="seed ledgers, or folders holding one")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--min-seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, help="where the Markdown goes (default: print it)")
    a = ap.parse_args(argv)
    try:
        paths = [ledger_path(p, a.dataset, a.profile) for p in a.ledgers]
        ledgers = [load(p, a.dataset, a.profile) for p in paths]
        rows = table_rows(ledgers)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = "python scripts/seed_table.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    booked = {r["job"] for led in ledgers for r in led["rows"]}
    text = markdown(rows, paths, command, a.min_seeds, configured(a.dataset), booked)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
        print(f"wrote {a.out}")
    print(next(line for line in text.splitlines() if line.startswith("**")))  # the count line
    return 0


if __name__ == "__main__":
    sys.exit(main())
