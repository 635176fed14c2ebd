"""Random-walk Metropolis, batched over chains, with per-chain proposal scale."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .base import Info, State, evaluate


class RWMParams(NamedTuple):
    scale: Tensor  # (B,) proposal scale per chain
    per_chain = ("scale",)  # how trex.population.merge_params joins the records of several targets


class RWM:
    """Metropolis with z' = z + scale * N(0, I), or target.propose(z, scale, generator)
    when the target has one (it returns the log proposal ratio log q(z|z') - log q(z'|z)).

    One batched forward pass per step, no gradients. Info.divergent flags proposals
    at bad points (non-finite log density); they are rejected.
    """

    name = "rwm"

    def __init__(self, scale=0.5, target_accept=0.234):
        self.scale, self.target_accept = scale, target_accept

    def init(self, position: Tensor, target) -> State:
        position = position.detach()
        logdensity, _ = evaluate(target, position, with_grad=False)
        return State(position, logdensity, None)

    def init_params(self, num_chains, dim, device=None, dtype=None) -> RWMParams:
        dtype = dtype or torch.get_default_dtype()
        return RWMParams(torch.full((num_chains,), float(self.scale), device=device, dtype=dtype))

    def step(self, state: State, target, params: RWMParams, generator=None):
        z0, ld0 = state.position, state.logdensity
        kw = dict(generator=generator, device=z0.device, dtype=z0.dtype)
        propose = getattr(target, "propose", None)
        if propose is not None:
            z1, log_q = propose(z0, params.scale, generator)
            z1, log_q = z1.detach(), log_q.detach()
        else:
            z1 = z0 + params.scale[:, None] * torch.randn(z0.shape, **kw)
            log_q = torch.zeros_like(ld0)
        ld1, _ = evaluate(target, z1, with_grad=False)
        bad = ~torch.isfinite(ld1) | ~torch.isfinite(z1).all(-1)
        # a start at -inf gives +inf here (always accept); -inf - -inf = NaN (reject)
        log_ratio = torch.nan_to_num(ld1 - ld0 + log_q, nan=-math.inf, posinf=0.0)
        log_ratio = torch.where(bad, torch.full_like(ld1, -math.inf), log_ratio.clamp(max=0.0))
        accept_prob = torch.exp(log_ratio)
        accepted = torch.rand(ld1.shape, **kw) < accept_prob
        new = State(torch.where(accepted[:, None], z1, z0), torch.where(accepted, ld1, ld0), None)
        steps = torch.ones_like(ld0, dtype=torch.long)
        return new, Info(accept_prob, accepted, bad, 0, 1, params.scale, steps)

    def adaptation(self, num_warmup: int) -> "RWMAdaptation":
        return RWMAdaptation(self, num_warmup)


class RWMAdaptation:
    """Robbins-Monro on log scale, per chain: log s += m^-0.6 (accept_prob - target).

    The final scale averages log s over the second half of warm-up (Polyak averaging),
    which removes most of the noise of single-step acceptance probabilities.
    """

    def __init__(self, kernel: RWM, num_warmup: int):
        self.target, self.num_warmup = kernel.target_accept, num_warmup
        self.m, self.log_scale, self.sum, self.count = 0, None, None, 0
        self.done = 0  # warm-up steps seen, across restarts

    def update(self, params: RWMParams, state: State, info: Info) -> RWMParams:
        self.m += 1
        self.done += 1
        if self.log_scale is None:
            self.log_scale = torch.log(params.scale)
        alpha = torch.nan_to_num(info.accept_prob.to(self.log_scale), nan=0.0)
        self.log_scale = self.log_scale + self.m ** (-0.6) * (alpha - self.target)
        if self.m > self.num_warmup // 2:
            self.sum = self.log_scale if self.sum is None else self.sum + self.log_scale
            self.count += 1
        return RWMParams(torch.exp(self.log_scale))

    def restart(self, params: RWMParams) -> RWMParams:
        """Adapt afresh from the current scale (the runner calls this when σ annealing ends)."""
        self.log_scale = torch.log(params.scale)
        self.m, self.sum, self.count = 0, None, 0
        self.num_warmup = max(self.num_warmup - self.done, 2)
        return params

    def final(self, params: RWMParams) -> RWMParams:
        if self.count == 0:
            return params
        return RWMParams(torch.exp(self.sum / self.count))
