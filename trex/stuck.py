"""Stuck chains: found during warm-up, replaced by copies of chains that move, reported if any remain.

A chain is stuck when it has accepted no move in the last `window` steps, or when, once σ has
reached its final value, its confidences are more than `far` from the target. A chain like that
does not explore the posterior; left alone it sinks the averages and R-hat of the whole run and
fills the grid's per-chain slots with one bad image. During warm-up (after σ annealing) the runner
calls `check` every `every` steps until `window / 2` steps before the end; each stuck chain takes the
position of a chain drawn uniformly from the chains that are not stuck. Only stuck chains are
replaced, so the population keeps its spread (resampling every chain by weight, the SMC warm-up,
leaves groups of copies that raise R-hat). Warm-up draws are discarded, so the kept draws are still
plain MCMC on the posterior; what is still stuck at the end is named in the diagnostics.
"""
from __future__ import annotations

import numpy as np
import torch

WINDOW, FAR = 50, 0.2


class StuckWatch:
    def __init__(self, num_chains: int, num_warmup: int, anneal_end: int, device, window: int = WINDOW,
                 far: float = FAR, every: int = 25, replace: bool = True):
        self.window, self.far, self.replace = window, far, replace
        self.idle = torch.zeros(num_chains, dtype=torch.long, device=device)  # steps since the last accepted move
        last = num_warmup - window // 2
        self.checks = set(range(anneal_end + every, last + 1, every)) if replace else set()
        self.replaced = 0  # chain replacements so far

    def observe(self, accepted: torch.Tensor) -> None:
        self.idle = torch.where(accepted, torch.zeros_like(self.idle), self.idle + 1)

    def stuck(self, distance: torch.Tensor) -> torch.Tensor:
        """(B,) bool: no accepted move for `window` steps, or farther than `far` from the target."""
        return (self.idle >= self.window) | ~(distance <= self.far)  # NaN distance counts as far

    def check(self, t: int, state, distance_fn, generator: torch.Generator):
        """At a check step, replace the stuck chains of `state` (a namedtuple of per-chain tensors)."""
        if t not in self.checks:
            return state
        bad = self.stuck(distance_fn(state.position))
        good = (~bad).nonzero().squeeze(1)
        n_bad = int(bad.sum())
        if n_bad == 0 or len(good) == 0:  # nothing to do, or nothing to copy from
            return state
        pick = good[torch.randint(len(good), (n_bad,), generator=generator, device=good.device)]
        idx = torch.arange(len(bad), device=bad.device)
        idx[bad] = pick
        self.idle[bad] = 0
        self.replaced += n_bad
        return type(state)(*(None if x is None else x[idx] for x in state))


def stuck_chains(distance: np.ndarray, accepted: np.ndarray, window: int = WINDOW, far: float = FAR) -> list[int]:
    """Chains stuck in the kept draws (C, S): no accepted move in the last min(window, S) draws, or a
    median distance to the target above `far`."""
    w = min(window, accepted.shape[1])
    idle = ~accepted[:, -w:].any(1) if w > 1 else np.zeros(len(accepted), bool)
    far_off = ~(np.median(distance, 1) <= far)
    return [int(c) for c in np.flatnonzero(idle | far_off)]
