"""Time one GAN training step (discriminator + generator update, batch 128) by memory format and threads,
and two one-thread processes side by side: what decides how to train the zoo's GANs on a small CPU.

    python bench/bench_gan_step.py [--width 16] [--steps 30]

Prints a Markdown table: seconds per step for each process, and steps per second over all processes.
Run it on a quiet machine; it starts its own worker processes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time


def one(width: int, steps: int, channels_last: bool, threads: int) -> float:
    """Seconds per training step after a warm-up of 5 steps (the GANModule's own networks and losses)."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    from lightning_modules.components.generators import DCGANDiscriminator, DCGANGenerator
    torch.manual_seed(0)
    g, d = DCGANGenerator(latent_dim=5, width=width), DCGANDiscriminator(width=width)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g, d = g.to(memory_format=fmt), d.to(memory_format=fmt)
    og = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    x = torch.rand(128, 1, 28, 28).contiguous(memory_format=fmt)

    def step():
        fake = g(torch.randn(128, 5))
        real_logit, fake_logit = d(x), d(fake.detach())
        loss = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit)) + \
            F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        od.zero_grad()
        loss.backward()
        od.step()
        fake_logit = d(fake)
        g_loss = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        og.zero_grad()
        g_loss.backward()
        og.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--worker", nargs=2, metavar=("CHANNELS_LAST", "THREADS"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(one(a.width, a.steps, a.worker[0] == "1", int(a.worker[1])))
        return

    def run(channels_last: bool, threads: int, processes: int) -> list[float]:
        cmd = [sys.executable, __file__, "--width", str(a.width), "--steps", str(a.steps),
               "--worker", "1" if channels_last else "0", str(threads)]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
        return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]

    rows = []
    for channels_last, threads, processes in ((False, 2, 1), (True, 2, 1), (False, 1, 2), (True, 1, 2)):
        per = run(channels_last, threads, processes)
        rows.append((channels_last, threads, processes, per, sum(1 / s for s in per)))
    base = rows[0][4]
    print(f"GAN training step, width {a.width}, batch 128, {a.steps} steps per process\n")
    print("| memory format | threads × processes | s per step (each process) | steps/s in all | vs first row |")
    print("|---|---|---|---|---|")
    for channels_last, threads, processes, per, rate in rows:
        print(f"| {'channels-last' if channels_last else 'contiguous'} | {threads} × {processes} | "
              f"{', '.join(f'{s:.3f}' for s in per)} | {rate:.1f} | {rate / base:.2f}× |")


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    main()
