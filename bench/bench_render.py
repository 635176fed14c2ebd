"""Scenes rendered per second by trex.scenes.Renderer on this CPU, for the render-speed bar of
issue 16 (>= 100 scenes/s at 128 x 128; the paper's Blender renders 0.27 scenes/s).

    python bench/bench_render.py [--threads 1 2] [--sizes 64 128 256] [--batch 64] [--out docs/results/render_benchmark.md]

Scenes are prior draws of 5 objects (the paper's scenes); each setting renders `--repeats`
batches after one warm-up batch and reports the median batch time.
"""
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's trex, wherever it is run from

import torch

from trex.scenes import Renderer, ScenePrior

BLENDER = 0.27  # scenes per second: the paper's 3.75 s per render


def measure(size: int, threads: int, batch: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    prior = ScenePrior(renderer=Renderer(size=size))
    z = prior.sample_prior(batch * (repeats + 1), torch.Generator().manual_seed(0))
    prior.decode(z[:batch])  # warm-up
    times = []
    for chunk in z[batch:].split(batch):
        t = time.perf_counter()
        prior.decode(chunk)
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows, rates = [], {}
    for threads in args.threads:
        for size in args.sizes:
            rate = rates[threads, size] = measure(size, threads, args.batch, args.repeats)
            rows.append(f"| {size}×{size} | {threads} | {args.batch} | {rate:.0f} | {rate / BLENDER:,.0f}× |")
            print(rows[-1], flush=True)
    load = os.getloadavg()
    head = ["| image | torch threads | batch | scenes / s | vs Blender (0.27 / s) |", "|---|---|---|---|---|"]
    cpu = platform.processor() or platform.machine()
    lines = ["# Scene renderer speed", "",
             f"`python bench/bench_render.py {' '.join(sys.argv[1:])}`".replace("  ", " "), "",
             f"CPU: {os.cpu_count()} cores ({cpu}), torch {torch.__version__}; load average when measured "
             f"{load[0]:.1f} (the machine is shared: other jobs were running). Scenes: 5-object prior draws, "
             f"median of {args.repeats} batches after a warm-up batch.", "", *head, *rows, ""]
    slower = [s for (t, s) in rates if t > 1 and (1, s) in rates and rates[t, s] < rates[1, s]]
    if slower:
        lines += ["More threads were slower here: with more runnable jobs than cores, torch's threads wait on "
                  "each other at every operation, so on a shared machine one thread renders fastest.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
