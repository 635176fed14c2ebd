"""Records and small helpers shared by the samplers.

Target protocol (what every kernel receives; all chains are batched in dim 0):
    target.dim: int
    target.logdensity(z (B, D)) -> (B,)              may hold -inf/NaN at bad points
    target.logdensity_and_grad(z) -> ((B,), (B, D))   gradient per chain
    target.propose(z, scale (B,), generator) -> (z_new, log_q_ratio (B,))   optional, RWM only

Kernel protocol (driven by the runner):
    state = kernel.init(position, target)
    params = kernel.init_params(num_chains, dim, device, dtype)
    adapt = kernel.adaptation(num_warmup)
    for each warm-up step: state, info = kernel.step(state, target, params, generator)
                           params = adapt.update(params, state, info)
    params = adapt.final(params)
    then sampling steps with fixed params.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor


class State(NamedTuple):
    """Where the chains are. Never holds NaN: bad points have logdensity -inf, grad 0."""

    position: Tensor  # (B, D)
    logdensity: Tensor  # (B,)
    grad: Optional[Tensor]  # (B, D), or None for gradient-free kernels


class Info(NamedTuple):
    """What one step did. Fields shared by every kernel (HMCInfo starts with the same ones).

    accept_prob     (B,) Metropolis acceptance probability, 0 for divergent proposals
    accepted        (B,) bool, the proposal was taken
    divergent       (B,) bool, the proposal hit a bad point (non-finite log density or
                    gradient) or, for HMC, an energy error above the divergence threshold
    num_grad_evals  int, batched forward+backward passes of the target this step
    num_evals       int, batched forward passes this step (includes the ones with gradient)
    step_size       (B,) step size (HMC) or proposal scale (RWM) used
    num_steps       (B,) long, leapfrog steps per chain (1 for RWM)
    """

    accept_prob: Tensor
    accepted: Tensor
    divergent: Tensor
    num_grad_evals: int
    num_evals: int
    step_size: Tensor
    num_steps: Tensor


class RunResult(NamedTuple):
    """Output of the whole-run samplers (NUTSPyro, Hamiltorch), warm-up excluded."""

    positions: Tensor  # (C, S, D)
    logdensity: Tensor  # (C, S)
    accept_prob: Optional[Tensor]  # (C, S) or None when the backend does not report it
    divergent: Tensor  # (C, S) bool
    step_size: Tensor  # (C,) final adapted step size per chain
    num_grad_evals: int  # total gradient evaluations, warm-up included, all chains
    wall_time: float  # seconds


def value_and_grad(logdensity, z: Tensor):
    """(logdensity(z), its gradient in z), per chain: what a target's logdensity_and_grad returns."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        lp = logdensity(z)
        (grad,) = torch.autograd.grad(lp.sum(), z)
    return lp.detach(), grad


def rows_of(target, idx):
    """The target for the chains `idx` only: a population (trex.population) must know whose rows it
    evaluates; a target whose rows are alike is its own subset."""
    return target.subset(idx) if hasattr(target, "subset") else target


def evaluate(target, position: Tensor, with_grad: bool = True):
    """Call the target and make its output safe to store.

    A chain whose log density or gradient is not finite gets logdensity -inf and a zero
    gradient, so callers only test `isfinite(logdensity)` and NaN never spreads.
    Returns (logdensity, grad) or (logdensity, None).
    """
    if with_grad:
        logdensity, grad = target.logdensity_and_grad(position)
        logdensity, grad = logdensity.detach(), grad.detach()
        ok = torch.isfinite(logdensity) & torch.isfinite(grad).all(dim=-1)
        logdensity = torch.where(ok, logdensity, torch.full_like(logdensity, -math.inf))
        grad = torch.where(ok[:, None], grad, torch.zeros_like(grad))
        return logdensity, grad
    with torch.no_grad():
        logdensity = target.logdensity(position).detach()
    ok = torch.isfinite(logdensity)
    return torch.where(ok, logdensity, torch.full_like(logdensity, -math.inf)), None


class DualAveraging:
    """Per-chain Nesterov dual averaging of log step size (Hoffman & Gelman 2014, Alg. 5).

    `update(accept_prob)` returns the step size to use next; `averaged()` the iterate
    average, which is the value to keep once warm-up ends. With pool=True every chain is
    driven by the mean acceptance over chains (one shared step size): single-chain
    acceptance is so noisy that per-chain averaged steps end up ~10-15% small.
    """

    def __init__(self, step_size: Tensor, target: float, gamma=0.05, t0=10.0, kappa=0.75,
                 pool: bool = False):
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.pool = pool
        self.restart(step_size)

    def restart(self, step_size: Tensor):
        if self.pool:  # chains share one value; the geometric mean is the natural one
            step_size = step_size.log().mean().exp().expand_as(step_size)
        # mu = log(10 eps0) biases early iterates towards larger steps, as in the paper.
        self.mu = torch.log(10 * step_size)
        self.log_step = torch.log(step_size)
        self.log_avg = torch.log(step_size)
        self.h_bar = torch.zeros_like(step_size)
        self.m = 0

    def update(self, accept_prob: Tensor) -> Tensor:
        self.m += 1
        m = self.m
        alpha = torch.nan_to_num(accept_prob.to(self.h_bar), nan=0.0).clamp(0.0, 1.0)
        if self.pool:
            alpha = alpha.mean().expand_as(self.h_bar)
        w = 1.0 / (m + self.t0)
        self.h_bar = (1 - w) * self.h_bar + w * (self.target - alpha)
        self.log_step = self.mu - math.sqrt(m) / self.gamma * self.h_bar
        eta = m ** (-self.kappa)
        self.log_avg = eta * self.log_step + (1 - eta) * self.log_avg
        return torch.exp(self.log_step)

    def averaged(self) -> Tensor:
        return torch.exp(self.log_avg)


class PooledVariance:
    """Running mean/variance per dimension, pooled over chains (Chan et al. merge)."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, None, None

    def add(self, x: Tensor):  # x (B, D)
        x = x.detach()
        nb, mean_b = x.shape[0], x.mean(0)
        m2_b = ((x - mean_b) ** 2).sum(0)
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * nb / n
        self.m2 = self.m2 + m2_b + delta**2 * self.n * nb / n
        self.n = n

    def variance(self, regularize: bool = True) -> Tensor:
        var = self.m2 / max(self.n - 1, 1)
        if regularize:  # Stan's shrinkage towards 1e-3 for small windows
            var = (self.n / (self.n + 5.0)) * var + 1e-3 * (5.0 / (self.n + 5.0))
        return var
