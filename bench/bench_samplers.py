"""Benchmark: Pyro NUTS (the paper's sampler) vs our batched HMC and RWM on one posterior.

    python bench/bench_samplers.py [--target ambiguous:1,7] [--classifier PATH] [--generator PATH]

Same posterior (trained MNIST VAE + classifier, σ = 0.05), same machine, one run. Prints a
markdown table and writes it to bench/results/. ESS is ArviZ's bulk ESS, the minimum over the
latent dimensions, pooled over chains (ess_bulk_min) and per chain then summed (ess_chain_sum, the
way a single NUTS chain is judged); 'within' is the share of kept samples whose confidences all
lie within that distance of the target's ideal vector.

Rows: NUTS the paper's way (one chain from z = 0); NUTS with several chains from the same kind of
starts as our samplers (--nuts-multi), so that its pooled ESS can be compared with ours; our HMC with
64 chains at NUTS's lengths; the --many HMC rows (by default the same with bf16 trajectory gradients,
and 256 short chains); RWM.

Why the multi-chain NUTS row: a single chain's ESS only sees the part of the posterior that chain
visits, while the pooled ESS of a multi-chain run also counts how much the chains disagree (our
short-trajectory chains settle in different parts of an ambiguous level set). Pooled ESS is only
like for like between runs that both have several chains.
"""
import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

import trex
from lightning_modules.classifier import load_classifier
from lightning_modules.loading import load_generator
from trex.summary import markdown_table

ROOT = Path(__file__).resolve().parent.parent
PROGRESS = False


def run_one(label, post, sampler, chains, warmup, samples, seed, **kw):
    t = time.time()
    res = trex.sample(post, sampler, num_chains=chains, num_warmup=warmup, num_samples=samples, seed=seed,
                      store_images=False, progress=PROGRESS, **kw)
    wall = time.time() - t
    d = res.diagnostics
    ess = d["ess_bulk_min"]
    conf = res.confidence_summary()
    named = [c for c, v in zip(res.meta["classes"], res.ideal) if v > 0]
    return {"sampler": label, "chains": chains, "warmup": warmup, "kept": chains * samples,
            "wall_s": round(wall, 1), "grad_evals": int(res.meta["grad_evals"]),
            "forward_evals": int(res.meta.get("forward_evals") or 0),
            "surrogate_grads": int(res.meta.get("guide_evals", 0)) * chains or "-",
            "ess_bulk_min": round(ess, 1), "ess_per_s": round(ess / wall, 3),
            "ess_chain_sum": round(d["ess_chain_sum_min"], 1), "chain_ess_per_s": round(d["ess_chain_sum_min"] / wall, 3),
            "conf_ess_min": round(d["confidence_ess_bulk_min"], 1),
            "conf_ess_per_s": round(d["confidence_ess_bulk_min"] / wall, 3),
            "within_0.05": round(d["near_target_0.05"], 3), "within_0.1": round(d["near_target_0.1"], 3),
            "accept": round(d["accept_prob_mean"], 3),  # NUTS: its trees' mean acceptance probability
            "divergences": d["divergences"], "rhat_max": round(d["rhat_max"], 2),
            "conf_rhat_max": round(d["confidence_rhat_max"], 3),
            "confidence": ", ".join(f"{c}: {conf[c][0]:.3f} ± {conf[c][1]:.3f}" for c in named)}


def table(rows) -> str:
    cols = ["sampler", "chains", "warmup", "kept", "wall_s", "grad_evals", "surrogate_grads", "ess_bulk_min", "ess_per_s", "vs_nuts",
            "vs_nuts_multi",
            "ess_chain_sum", "chain_ess_per_s", "vs_nuts_chain",
            "conf_ess_min", "conf_ess_per_s", "vs_nuts_conf", "within_0.05", "within_0.1", "accept", "divergences",
            "rhat_max", "conf_rhat_max", "confidence"]
    return markdown_table(rows, cols)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classifier", default="zoo/quick/mnist/classifier.ckpt")
    ap.add_argument("--generator", default="zoo/quick/mnist/vae.ckpt")
    ap.add_argument("--target", default="ambiguous:1,7")
    ap.add_argument("--sigma", type=float, default=0.05)
    ap.add_argument("--nuts-warmup", type=int, default=300)
    ap.add_argument("--nuts-samples", type=int, default=300)
    ap.add_argument("--nuts-multi", default="4:150:150",
                    help="chains:warmup:samples of a multi-chain NUTS row started like ours ('' skips it)")
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=300, help="warm-up steps of our samplers")
    ap.add_argument("--many", default="64:150:1200:float32:16:surrogate,64:300:300:bfloat16:16,256:150:25:bfloat16:64",
                    help="more HMC rows, comma-separated chains:warmup:samples:grad_dtype:init_candidates[:flag...], "
                         "e.g. 64:150:300:float32:16 for a shorter warm-up; flag 'smc' starts from "
                         "init=prior_resample and resamples during warm-up, flag 'surrogate' lets trajectories follow "
                         "a surrogate fit during warm-up ('' skips them)")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--skip", default="", help="comma-separated samplers to skip: nuts,hmc,hmc_plain,rwm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default="", help="comma-separated seeds: the whole bench once per seed, then a table of "
                                                "each row's medians over them (NUTS's own ESS swings between seeds)")
    ap.add_argument("--progress", action="store_true", help="show the samplers' progress bars")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="folder for the .md and .json tables")
    a = ap.parse_args(argv)
    if a.seeds:
        return over_seeds(a, [int(x) for x in a.seeds.split(",")], sys.argv[1:] if argv is None else list(argv))
    global PROGRESS
    PROGRESS = a.progress
    if a.threads:
        torch.set_num_threads(a.threads)
    clf, classes = load_classifier(a.classifier)
    dist = trex.LatentGaussian(load_generator(a.generator))
    post = trex.RelaxedPosterior(dist, clf, a.target, sigma=a.sigma, classes=classes)
    skip = set(filter(None, a.skip.split(",")))
    rows = []
    if "nuts" not in skip:  # the paper's set-up: one chain from z = 0, fixed σ, Pyro's NUTS defaults
        rows.append(run_one("Pyro NUTS (paper)", post, trex.samplers.NUTSPyro(), 1, a.nuts_warmup, a.nuts_samples,
                            a.seed, init=torch.zeros(1, dist.dim), sigma_schedule="constant"))
        print(table(rows), flush=True)
    if "nuts" not in skip and a.nuts_multi:  # the same kind of starts as HMC: the best of 16 prior draws each
        chains, warmup, samples = (int(v) for v in a.nuts_multi.split(":"))
        rows.append(run_one(f"Pyro NUTS ({chains} chains)", post, trex.samplers.NUTSPyro(), chains, warmup, samples,
                            a.seed, sigma_schedule="constant"))
        print(table(rows[-1:]), flush=True)
    if "hmc" not in skip and "hmc_plain" not in skip:  # hmc_plain: only the --many rows
        rows.append(run_one("trex HMC (batched)", post, trex.samplers.HMC(), a.chains, a.warmup, a.samples, a.seed))
        print(table(rows[-1:]), flush=True)
    if "hmc" not in skip:
        for spec in filter(None, a.many.split(",")):
            chains, warmup, samples, dtype, candidates, *flags = spec.split(":")
            unknown = set(flags) - {"smc", "surrogate"}
            if unknown:
                raise SystemExit(f"unknown --many flags {sorted(unknown)} in {spec!r}; use smc, surrogate")
            smc, surrogate = "smc" in flags, "surrogate" in flags
            kernel = trex.samplers.HMC(grad_dtype=None if dtype in ("", "float32") else dtype, surrogate=surrogate)
            grads = f", {dtype} gradients" if kernel.grad_dtype else ""
            label = (f"trex HMC ({chains} chains, {warmup} + {samples}{grads}{', SMC warm-up' if smc else ''}"
                     f"{', surrogate gradients' if surrogate else ''})")
            rows.append(run_one(label, post, kernel, int(chains), int(warmup), int(samples), a.seed,
                                init_candidates=int(candidates), resample=smc,
                                init="prior_resample" if smc else "prior_best"))
            print(table(rows[-1:]), flush=True)
    if "rwm" not in skip:
        rows.append(run_one("trex RWM (batched)", post, trex.samplers.RWM(), a.chains, a.warmup, a.samples * 4,
                            a.seed, thin=1))
    if rows and rows[0]["sampler"].startswith("Pyro"):
        multi = next((r for r in rows[1:] if r["sampler"].startswith("Pyro")), None)
        for r in rows:
            r["vs_nuts"] = round(r["ess_per_s"] / max(rows[0]["ess_per_s"], 1e-12), 1)
            r["vs_nuts_chain"] = round(r["chain_ess_per_s"] / max(rows[0]["chain_ess_per_s"], 1e-12), 1)
            r["vs_nuts_conf"] = round(r["conf_ess_per_s"] / max(rows[0]["conf_ess_per_s"], 1e-12), 1)
            if multi is not None:  # pooled against pooled: both runs have several chains
                r["vs_nuts_multi"] = round(r["ess_per_s"] / max(multi["ess_per_s"], 1e-12), 1)
    out = table(rows)
    header = (f"target {a.target}, σ={a.sigma}, seed {a.seed}, {platform.processor() or platform.machine()}, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("\n" + header + "\n" + out)
    for r in rows:
        if "vs_nuts" in r:
            multi = f", {r['vs_nuts_multi']}x multi-chain NUTS pooled" if "vs_nuts_multi" in r else ""
            print(f"{r['sampler']}: {r['vs_nuts']}x Pyro NUTS pooled-ESS per second, "
                  f"{r['vs_nuts_chain']}x per-chain-ESS per second{multi}")
    res_dir = Path(a.out)
    res_dir.mkdir(parents=True, exist_ok=True)
    slug = a.target.replace(":", "_").replace(",", "-")
    slug += f"_seed{a.seed}" if a.seed else ""
    (res_dir / f"samplers_{slug}.md").write_text(header + "\n\n" + out + "\n")
    (res_dir / f"samplers_{slug}.json").write_text(json.dumps({"header": header, "rows": rows}, indent=2))
    return rows


MEDIANS = ["wall_s", "ess_bulk_min", "ess_per_s", "vs_nuts", "conf_ess_min", "conf_ess_per_s", "vs_nuts_conf",
           "within_0.1", "accept", "rhat_max", "conf_rhat_max"]


def over_seeds(a, seeds, argv):
    """The bench once per seed (each its own table, `_seed<S>` files), then per row the median over the
    seeds of speed and quality, and the range of the two ratios against NUTS."""
    import numpy as np
    argv = _without_seeds(argv)
    runs = {s: main(argv + ["--seed", str(s)]) for s in seeds}
    labels = [r["sampler"] for r in runs[seeds[0]]]
    rows = []
    for i, label in enumerate(labels):
        per = [runs[s][i] for s in seeds]
        row = {"sampler": label, "seeds": ",".join(map(str, seeds))}
        for k in MEDIANS:
            vals = [r[k] for r in per if isinstance(r.get(k), (int, float))]
            row[k] = round(float(np.median(vals)), 3) if vals else "-"
        for k in ("vs_nuts", "vs_nuts_conf"):
            vals = [r[k] for r in per if isinstance(r.get(k), (int, float))]
            row[k + "_range"] = f"{min(vals)}-{max(vals)}" if vals else "-"
        rows.append(row)
    cols = ["sampler", "seeds"] + MEDIANS[:4] + ["vs_nuts_range"] + MEDIANS[4:7] + ["vs_nuts_conf_range"] + MEDIANS[7:]
    header = (f"target {a.target}, σ={a.sigma}, medians over seeds {seeds}, {platform.processor() or platform.machine()}, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d %H:%M')}")
    out = header + "\n\n" + markdown_table(rows, cols)
    print("\n" + out)
    slug = a.target.replace(":", "_").replace(",", "-")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / f"samplers_{slug}_seeds.md").write_text(out + "\n")
    (Path(a.out) / f"samplers_{slug}_seeds.json").write_text(json.dumps({"header": header, "rows": rows,
                                                                         "per_seed": runs}, indent=2))
    return rows


def _without_seeds(argv):
    out, skip = [], False
    for x in argv:
        if skip:
            skip = False
        elif x in ("--seeds", "--seed"):
            skip = True
        elif not x.startswith(("--seeds=", "--seed=")):
            out.append(x)
    return out


if __name__ == "__main__":
    main()
