"""Benchmark: the 45 MNIST ambiguous pairs as one population against one run per target.

    python bench/bench_sweep.py --threads 2 [--parts population,per_target,nuts]

Same models (the quick MNIST VAE and classifier `make demo` trains), σ = 0.05, one process:
- population: all 45 targets `ambiguous:i,j` (i < j) in one trex.sample call, surrogate HMC, 16 chains
  per target, 150 warm-up + 750 kept steps, seed 0, SMC resampling while σ anneals (init prior_resample),
  exact-gradient fallback for a target whose acceptance falls below 0.1, one surrogate fit for all (no
  cache: a cold run);
- per target: the same sampler configuration, one trex.sample call per target as before the
  population engine existed (each fits its own surrogate), timed on 5 fixed pairs, × 9;
- NUTS: the paper's per-target budget, Pyro NUTS 1,000 warm-up + 1,000 kept on one chain from z = 0,
  timed on one pair, × 45.
A pair counts as found when both mean confidences lie in [0.4, 0.6], at least 90 % of its draws are
within 0.1 of (0.5, 0.5) and the confidence R-hat is at most 1.1 (trex.analysis.ambiguity.pair_quality,
the suite's one definition). Speed-ups are given in wall time
and in the process's CPU time (which other jobs on a shared machine move less). Prints markdown
tables and writes them (and a JSON record) to --out.
"""
import argparse
import json
import os
import platform
import subprocess
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

import trex
from lightning_modules.classifier import load_classifier
from lightning_modules.loading import load_generator
from trex.analysis.ambiguity import pair_quality
from trex.summary import markdown_table as table

ROOT = Path(__file__).resolve().parent.parent
PAIRS = list(combinations(range(10), 2))
TIMED = [(0, 1), (1, 7), (3, 5), (4, 9), (2, 8)]  # the per-target runs: 5 fixed pairs


def quality(res) -> dict:
    """The sweep's row for one pair; "found" is trex.analysis.ambiguity's rule (one definition)."""
    q = pair_quality(res)
    d = res.diagnostics
    return {"pair": "{} vs {}".format(*q["pair"]), "mean_i": round(q["mean_i"], 3), "mean_j": round(q["mean_j"], 3),
            "within_0.1": round(q["within_0.1"], 3), "conf_rhat": round(q["conf_rhat"], 3),
            "conf_ess": round(q["conf_ess"], 1), "accept": round(d["accept_prob_mean"], 2),
            "stuck": len(d["stuck_chains"]), "exact_fallback": _fell_back(res), "found": q["found"]}


def _fell_back(res) -> bool:
    """Whether this target's chains switched to exact gradients (its surrogate acceptance collapsed)."""
    return bool((res.meta.get("fallback") or {}).get("exact_gradients", False))


def _commit() -> str:
    """The code the figures belong to (with '-dirty' when the work tree has changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout
        return head.strip() + ("-dirty" if dirty.strip() else "")
    except OSError:
        return "unknown"


def posteriors(dist, clf, classes, pairs, sigma):
    return [trex.RelaxedPosterior(dist, clf, f"ambiguous:{i},{j}", sigma=sigma, classes=classes) for i, j in pairs]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classifier", default="zoo/quick/mnist/classifier.ckpt")
    ap.add_argument("--generator", default="zoo/quick/mnist/vae.ckpt")
    ap.add_argument("--sigma", type=float, default=0.05)
    ap.add_argument("--chains", type=int, default=16, help="chains per target")
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--samples", type=int, default=750)
    ap.add_argument("--nuts", default="1000:1000", help="warmup:samples of the one-chain NUTS run")
    ap.add_argument("--parts", default="population,per_target,nuts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-resample", dest="resample", action="store_false",
                    help="no SMC resampling of each target's chains while σ anneals (init prior_best instead of "
                         "prior_resample)")
    ap.add_argument("--fallback", type=float, default=0.1,
                    help="acceptance below which a target's chains switch to exact gradients (negative: never)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    parts = set(a.parts.split(","))
    clf, classes = load_classifier(a.classifier)
    dist = trex.LatentGaussian(load_generator(a.generator))
    plan = trex.Plan(num_chains=a.chains, num_warmup=a.warmup, num_samples=a.samples, seed=a.seed,
                     resample=a.resample, store_images=False, progress=a.progress)
    fallback = a.fallback if a.fallback >= 0 else None
    kernel = lambda: trex.samplers.HMC(surrogate=True, surrogate_fallback=fallback)  # noqa: E731  (the same everywhere)
    record = {"config": vars(a), "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                                            f"{torch.get_num_threads()} threads", "date": time.strftime("%Y-%m-%d %H:%M")}
    record["load_before"] = [round(x, 2) for x in os.getloadavg()]  # other jobs on the machine skew the times
    record["commit"] = _commit()
    summary = []
    if "population" in parts:
        t, c = time.time(), time.process_time()
        runs = trex.sample(posteriors(dist, clf, classes, PAIRS, a.sigma), kernel(), plan)
        wall, cpu = time.time() - t, time.process_time() - c
        rows = [quality(r) for r in runs]
        record["population"] = {"wall_s": round(wall, 1), "rows": rows, "surrogate": runs[0].meta.get("surrogate")}
        found = sum(r["found"] for r in rows)
        summary.append({"run": f"population: 45 targets × {a.chains} chains, one call", "measured": "45 pairs",
                        "wall_s": round(wall, 1), "sweep_s": round(wall, 1), "cpu_s": round(cpu, 1),
                        "sweep_cpu_s": round(cpu, 1), "found": f"{found} of 45"})
        print(table(rows, list(rows[0])), flush=True)
    if "per_target" in parts:
        rows, walls, cpus = [], [], []
        for pair in TIMED:
            t, c = time.time(), time.process_time()
            res = trex.sample(posteriors(dist, clf, classes, [pair], a.sigma)[0], kernel(), plan)
            walls.append(time.time() - t)
            cpus.append(time.process_time() - c)
            rows.append(dict(quality(res), wall_s=round(walls[-1], 1)))
            print(table(rows[-1:], list(rows[-1])), flush=True)
        record["per_target"] = {"rows": rows}
        summary.append({"run": f"per target: one call per target, {a.chains} chains", "measured": "5 pairs",
                        "wall_s": round(sum(walls), 1), "sweep_s": round(sum(walls) * 9, 1),
                        "cpu_s": round(sum(cpus), 1), "sweep_cpu_s": round(sum(cpus) * 9, 1),
                        "found": f"{sum(r['found'] for r in rows)} of 5"})
    if "nuts" in parts:
        warmup, samples = (int(v) for v in a.nuts.split(":"))
        t, c = time.time(), time.process_time()
        res = trex.sample(posteriors(dist, clf, classes, [(1, 7)], a.sigma)[0], trex.samplers.NUTSPyro(),
                          num_chains=1, num_warmup=warmup, num_samples=samples, seed=a.seed, store_images=False,
                          progress=a.progress, init=torch.zeros(1, dist.dim), sigma_schedule="constant")
        wall, cpu = time.time() - t, time.process_time() - c
        row = dict(quality(res), wall_s=round(wall, 1), grad_evals=int(res.meta["grad_evals"]))
        record["nuts"] = row
        summary.append({"run": f"Pyro NUTS {warmup} + {samples}, one chain (paper)", "measured": "1 pair (1 vs 7)",
                        "wall_s": round(wall, 1), "sweep_s": round(wall * 45, 1),
                        "cpu_s": round(cpu, 1), "sweep_cpu_s": round(cpu * 45, 1),
                        "found": "found" if row["found"] else "not found"})
    record["load_after"] = [round(x, 2) for x in os.getloadavg()]
    base = next((s for s in summary if s["run"].startswith("population")), None)
    for s in summary:  # CPU seconds too: on a shared machine they move less than wall time
        s["speedup_wall"] = round(s["sweep_s"] / base["sweep_s"], 1) if base else "-"
        s["speedup_cpu"] = round(s["sweep_cpu_s"] / base["sweep_cpu_s"], 1) if base else "-"
    header = (f"{record['machine']}, {record['date']}, commit {record['commit']}, σ = {a.sigma}, {a.warmup} + {a.samples} steps, seed {a.seed}, "
              f"resample {a.resample}, exact-gradient fallback below acceptance {fallback}; "
              f"load average (1, 5, 15 min) {record['load_before']} before, {record['load_after']} after")
    out = header + "\n\n" + table(summary, ["run", "measured", "wall_s", "sweep_s", "cpu_s", "sweep_cpu_s", "found",
                                           "speedup_wall", "speedup_cpu"])
    if "population" in record:
        rows = record["population"]["rows"]
        out += "\n\nPopulation, per pair:\n\n" + table(rows, list(rows[0]))
    if "per_target" in record:
        rows = record["per_target"]["rows"]
        out += "\n\nPer-target runs:\n\n" + table(rows, list(rows[0]))
    if "nuts" in record:
        out += "\n\nNUTS:\n\n" + table([record["nuts"]], list(record["nuts"]))
    print("\n" + out)
    res_dir = Path(a.out)
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "sweep.md").write_text(out + "\n")
    (res_dir / "sweep.json").write_text(json.dumps(record, indent=2, default=float))
    return record


if __name__ == "__main__":
    main()
