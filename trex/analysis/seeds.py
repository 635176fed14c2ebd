"""The seed ledger: every sampler seed's per-run confidence summaries in one small JSON file beside the
report (docs/results/seeds_<dataset>_<profile>.json), so that seeds sampled on other machines or on other
days join one confidence table, when and only when they drew from the same models.

A row is one target of one run of one seed: the numbers trex.analysis.table.run_stats gives (classes,
draws, mean and std of each named class) and the weights digests of the classifier and generator the
run drew from (trex.safeload.weights_digest). Rows are plain data, so the file can be committed and read
back without the draws. Pure functions; the report and scripts/reproduce.py do the reading and writing.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VERSION = 1
KEY = ("seed", "job", "target")


def row(seed: int, experiment: str, job: str, stats: dict, models: dict, code_version: str) -> dict:
    """One ledger row from run_stats' dict (which carries the target's name)."""
    return {"seed": int(seed), "experiment": experiment, "job": job, "target": stats["target"],
            "classes": [int(c) for c in stats["classes"]], "draws": int(stats["draws"]),
            "mean": [float(v) for v in np.atleast_1d(stats["mean"])],
            "std": [float(v) for v in np.atleast_1d(stats["std"])],
            "models": dict(models), "code_version": code_version}


def as_stats(r: dict) -> dict:
    """A ledger row as run_stats' dict, for trex.analysis.table.confidence_table."""
    return {"target": r["target"], "seed": r["seed"], "classes": r["classes"], "draws": r["draws"],
            "mean": np.asarray(r["mean"]), "std": np.asarray(r["std"])}


def empty(dataset: str, profile: str) -> dict:
    return {"version": VERSION, "dataset": dataset, "profile": profile, "rows": [], "calls": []}


def load(path: Path, dataset: str, profile: str) -> dict:
    """The ledger at `path`, or an empty one; a ledger of another dataset or profile is an error."""
    path = Path(path)
    if not path.exists():
        return empty(dataset, profile)
    led = json.loads(path.read_text())
    if led.get("version") != VERSION or not isinstance(led.get("rows"), list):
        raise ValueError(f"{path} is not a seed ledger of version {VERSION}; delete it to start a new one")
    if (led.get("dataset"), led.get("profile")) != (dataset, profile):
        raise ValueError(f"{path} is the seed ledger of {led.get('dataset')}/{led.get('profile')}, not "
                         f"{dataset}/{profile}")
    return led


def merge(led: dict, rows: list[dict], calls=()) -> dict:
    """A new ledger: `rows` replace the rows with the same seed, run and target (a seed sampled again on
    new models leaves no stale row behind for those targets); `calls` (scripts/reproduce.py's timings
    entries, each with its seed and experiment) replace the calls of the same seed and experiment."""
    new = {tuple(r[k] for k in KEY) for r in rows}
    kept = [r for r in led["rows"] if tuple(r[k] for k in KEY) not in new]
    out = {**led, "rows": sorted([*kept, *rows], key=lambda r: (r["seed"], r["job"], r["target"]))}
    redone = {(c.get("seed", 0), c["experiment"]) for c in calls}
    out["calls"] = [*(c for c in led.get("calls", []) if (c.get("seed", 0), c["experiment"]) not in redone), *calls]
    return out


def joining(led: dict, live_seeds, reference: dict) -> tuple[list[dict], list[tuple[str, str]]]:
    """The ledger rows that join a table whose own runs are the seeds `live_seeds`: rows of other seeds
    whose models equal `reference[job]` ({role: digest}, the models the table's runs of that job drew
    from). Returns (rows, (job, plain statement) of each row left out and why)."""
    live = {int(s) for s in live_seeds}
    rows, left = [], []
    for r in led["rows"]:
        if r["seed"] in live:
            continue  # the live run folder says it better
        ref = reference.get(r["job"])
        if ref is None:
            left.append((r["job"], f"seed {r['seed']} {r['job']} {r['target']}: no run of it here to compare models with"))
        elif any(ref.get(role) != digest for role, digest in r["models"].items()) or set(ref) - set(r["models"]):
            diff = ", ".join(f"{role} {r['models'].get(role)} there, {ref.get(role)} here"
                             for role in sorted({*ref, *r["models"]}) if ref.get(role) != r["models"].get(role))
            left.append((r["job"], f"seed {r['seed']} {r['job']} {r['target']}: other models ({diff})"))
        else:
            rows.append(r)
    return rows, left


def by_models(ledgers) -> list[tuple[str, dict, list[dict]]]:
    """Rows of several ledgers (e.g. of zoos trained in different sessions) grouped so that each group's
    seeds drew from the same models: [(experiment, {role: digest}, [as_stats dicts])] in the order first
    seen, one group per experiment and model set (a job sampled on two zoos gives two groups). A seed
    booked in two ledgers on the same models counts once, and must agree there."""
    groups: dict[tuple, tuple[str, dict, dict]] = {}
    for led in ledgers:
        for r in led["rows"]:
            models = tuple(sorted(r["models"].items()))
            _, _, seen = groups.setdefault((r["experiment"], models), (r["experiment"], dict(models), {}))
            key = (r["seed"], r["job"], r["target"])
            if key in seen and (seen[key]["mean"] != r["mean"] or seen[key]["draws"] != r["draws"]):
                raise ValueError(f"seed {r['seed']} of {r['job']} {r['target']} is booked twice on the same models "
                                 f"with different results ({seen[key]['mean']} and {r['mean']}); keep one ledger's row")
            seen.setdefault(key, r)
    return [(e, m, [as_stats(r) for r in rows.values()]) for e, m, rows in groups.values()]
