"""How many of the 45 ambiguous pairs are found after k kept draws, for several k, from one run.

    python bench/sweep_lengths.py --threads 2 --samples 900 --prefixes 300,450,600,750,900 [--no-resample]

One population run (the sweep benchmark's: quick MNIST VAE + classifier, σ = 0.05, surrogate HMC, 16
chains per target, 150 warm-up steps, seed 0), then the "found" rule
(trex.analysis.ambiguity.pair_quality) on the first k kept draws of every chain. The first k draws of
a longer run are the draws a run with num_samples=k makes (nothing after step k changes them), so one
run answers the question for every k. This is how the sweep benchmark's run length was chosen.
"""
import argparse
import dataclasses
import time

import torch

import trex
from bench_sweep import PAIRS, posteriors  # the sweep benchmark's targets, built the same way
from lightning_modules.classifier import load_classifier
from lightning_modules.loading import load_generator
from trex.analysis.ambiguity import MEAN_RANGE, MIN_WITHIN, pair_quality
from trex.summary import markdown_table


def prefix(res, k: int):
    """The SampleSet of the first k kept draws (its stored diagnostics dropped: they were for all draws)."""
    cut = {f.name: getattr(res, f.name)[:, :k] for f in dataclasses.fields(res)
           if f.name in ("latents", "probs", "logdensity", "accepted", "divergent", "accept_prob", "typicality")
           and getattr(res, f.name) is not None}
    meta = {k2: v for k2, v in res.meta.items() if k2 != "diagnostics"}
    return dataclasses.replace(res, **cut, meta=meta)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classifier", default="zoo/quick/mnist/classifier.ckpt")
    ap.add_argument("--generator", default="zoo/quick/mnist/vae.ckpt")
    ap.add_argument("--chains", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--samples", type=int, default=900)
    ap.add_argument("--prefixes", default="300,450,600,750,900")
    ap.add_argument("--no-resample", dest="resample", action="store_false")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    clf, classes = load_classifier(a.classifier)
    dist = trex.LatentGaussian(load_generator(a.generator))
    posts = posteriors(dist, clf, classes, PAIRS, 0.05)
    plan = trex.Plan(num_chains=a.chains, num_warmup=a.warmup, num_samples=a.samples, seed=a.seed,
                     resample=a.resample, store_images=False)
    start = time.time()
    runs = trex.sample(posts, trex.samplers.HMC(surrogate=True), plan)
    wall = time.time() - start
    rows = []
    for k in (int(x) for x in a.prefixes.split(",")):
        qs = [pair_quality(prefix(r, k)) for r in runs]
        lo, hi = MEAN_RANGE  # the found rule without its R-hat part
        on_set = [q for q in qs if lo <= q["mean_i"] <= hi and lo <= q["mean_j"] <= hi and q["within_0.1"] >= MIN_WITHIN]
        rows.append({"kept": k, "found": sum(q["found"] for q in qs), "on the level set": len(on_set),
                     "missed on R-hat only": ", ".join("{}v{} ({:.2f})".format(*q["pair"], q["conf_rhat"])
                                                       for q in on_set if not q["found"])})
    print(f"resample {a.resample}, {a.chains} chains, {a.warmup} + {a.samples}, seed {a.seed}, {wall:.0f} s\n")
    print(markdown_table(rows, list(rows[0])))
    return rows


if __name__ == "__main__":
    main()
