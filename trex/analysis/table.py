"""The quantitative table (paper Tables 2, 9-11): per experiment and target, the mean ± std of the
target confidences over each run's draws, per sampler seed, then the between-seed mean and spread,
beside the paper's figure. The paper averages over 10 runs, so its "mean ± std" is set beside our
mean over seeds of each run's mean ± its mean over seeds of each run's std; the spread (std over
seeds of the per-run means) says how far one run may land from that. Rows feed
trex.summary.markdown_table(rows, COLUMNS).
"""
from __future__ import annotations

import numpy as np

from trex.analysis.paper_numbers import confidence_entry, describe
from trex.targets import TargetError, parse

COLUMNS = ["experiment", "target", "classes", "seeds", "draws", "confidence", "seed_spread", "per_seed", "paper"]


def target_name(res) -> str:
    """The target's name in tables: a scene target's catalogue name, else its canonical target string."""
    scene = res.meta.get("scene_target")
    if scene:
        return scene["name"]
    try:
        return str(parse(res.meta["target"]))
    except TargetError:
        return str(res.meta["target"])


def named_classes(res) -> list[int]:
    """The classes a target sets a confidence for (class:i -> i; ambiguous/p: the named ones); the
    classes the ideal vector puts mass on for a target that names none (uniform)."""
    classes = [int(c) for c in res.meta.get("classes", range(len(res.ideal)))]
    try:
        named = list(parse(res.meta["target"]).labels)
    except TargetError:
        named = []
    return named or [c for c, v in zip(classes, res.ideal) if v > 0]


def run_stats(res) -> dict:
    """One run's mean and std (over all kept draws, ddof 0 as the paper's tables) of each named class."""
    classes = [int(c) for c in res.meta.get("classes", range(len(res.ideal)))]
    named = named_classes(res)
    p = res.probs.reshape(-1, res.probs.shape[-1])[:, [classes.index(c) for c in named]]
    return {"target": target_name(res), "seed": res.meta.get("seed"), "classes": named, "draws": len(p), "mean": p.mean(0), "std": p.std(0)}


def _pm(means, stds) -> str:
    return ", ".join(f"{m:.3f} ± {s:.3f}" for m, s in zip(means, stds))


def confidence_table(groups: dict) -> list[dict]:
    """groups: {experiment name: [SampleSet or run_stats dict, ...]} (any targets, one run per seed; a
    dict stands for a run whose draws are not here, e.g. a seed ledger's row). One row per experiment and
    target, in the order first seen; numbers as floats (mean, std, spread) and as text."""
    rows = []
    for experiment, sets in groups.items():
        by_target: dict[str, list] = {}
        for res in sets:
            stats = res if isinstance(res, dict) else run_stats(res)
            by_target.setdefault(stats["target"], []).append(stats)
        for target, runs in by_target.items():
            runs.sort(key=lambda r: (r["seed"] is None, r["seed"]))
            if len({tuple(r["classes"]) for r in runs}) != 1:
                raise ValueError(f"{experiment} {target}: runs disagree on the target's classes")
            means, stds = np.stack([r["mean"] for r in runs]), np.stack([r["std"] for r in runs])
            mean, std = means.mean(0), stds.mean(0)
            spread = means.std(0, ddof=1) if len(runs) > 1 else None
            rows.append({
                "experiment": experiment, "target": target, "classes": ", ".join(map(str, runs[0]["classes"])),
                "seeds": len(runs), "draws": sum(r["draws"] for r in runs),
                "mean": mean.tolist(), "std": std.tolist(), "spread": None if spread is None else spread.tolist(),
                "confidence": _pm(mean, std),
                "seed_spread": "-" if spread is None else ", ".join(f"{s:.3f}" for s in spread),
                "per_seed": "; ".join(f"{_pm(r['mean'], r['std'])} (seed {r['seed']})" for r in runs),
                "paper": describe(confidence_entry(experiment, target)),
            })
    return rows
