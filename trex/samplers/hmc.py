"""Batched HMC: every chain advances together, one batched target call per leapfrog step.

Per-chain step sizes and trajectory lengths are handled by masking: a step runs
max_b n_b batched leapfrog steps and chains that are done (or hit a bad point) freeze.
"""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from trex.errors import UserError

from .base import DualAveraging, PooledVariance, State, evaluate, rows_of


def kinetic(momentum: Tensor, inv_mass: Tensor) -> Tensor:
    return 0.5 * (momentum * momentum * inv_mass).sum(-1)


def leapfrog(position, momentum, grad, step_size, num_steps: int, target,
             inv_mass: Optional[Tensor] = None, steps_per_chain: Optional[Tensor] = None,
             compact: Optional[bool] = None):
    """Velocity Verlet on H(q, p) = -log p(q) + p^T diag(inv_mass) p / 2, batched over chains.

    position, momentum, grad: (B, D); step_size: (B,) or scalar; inv_mass: (D,) or (B, D).
    steps_per_chain (B,) long: chain b stops after steps_per_chain[b] steps (the others go on up to
    num_steps; a chain with 0 steps stays put, with its own log density). A chain that reaches a
    point with non-finite log density or gradient stops there, with logdensity -inf and grad 0, so
    callers reject it via isfinite.
    On a CPU each of the num_steps calls of target.logdensity_and_grad sees only the chains still
    moving (finished chains are compacted out of the batch), so chains with their own trajectory
    lengths cost the sum of their steps, not every chain the longest one's; on an accelerator the
    whole batch is evaluated with finished chains masked, which needs no host sync (`compact`
    chooses; None: by device). Returns (position, momentum, logdensity, grad).
    """
    if num_steps < 1:
        raise ValueError("num_steps must be >= 1")
    eps = torch.as_tensor(step_size, dtype=position.dtype, device=position.device)
    eps = eps[:, None] if eps.dim() == 1 else eps
    eps = eps.expand(position.shape[0], 1) if eps.dim() == 2 else eps
    if inv_mass is None:
        inv_mass = torch.ones_like(position[0])
    m = inv_mass.expand_as(position)
    q, p, g = position.clone(), momentum.clone(), grad.clone()
    ld = torch.full(position.shape[:1], -math.inf, dtype=position.dtype, device=position.device)
    alive = torch.ones(position.shape[0], dtype=torch.bool, device=position.device)
    # On a CPU the work is per chain, so finished chains leave the batch; on an accelerator finding
    # them would wait for the device every step, and a masked full batch costs about the same.
    compact = position.device.type == "cpu" if compact is None else compact
    for i in range(num_steps):
        active = alive if steps_per_chain is None else alive & (steps_per_chain > i)
        idx = active.nonzero().squeeze(1) if compact and not bool(active.all()) else None
        if idx is not None and len(idx) == 0:
            break
        e, mi = (eps, m) if idx is None else (eps[idx] if eps.dim() else eps, m[idx])
        qa, pa, ga = (q, p, g) if idx is None else (q[idx], p[idx], g[idx])
        p_half = pa + 0.5 * e * ga
        qa = qa + e * mi * p_half
        ld_a, g_a = evaluate(target if idx is None else rows_of(target, idx), qa)
        pa = p_half + 0.5 * e * g_a
        if idx is None and compact:
            q, p, g, ld = qa, pa, g_a, ld_a
        elif idx is None:  # masked: what the finished chains' evaluation gave is thrown away
            a = active[:, None]
            q, p, g = torch.where(a, qa, q), torch.where(a, pa, p), torch.where(a, g_a, g)
            ld = torch.where(active, ld_a, ld)
        else:
            q[idx], p[idx], g[idx], ld[idx] = qa, pa, g_a, ld_a
        alive = alive & torch.isfinite(ld)
    if steps_per_chain is not None and bool((steps_per_chain < 1).any()):
        z = (steps_per_chain < 1).nonzero().squeeze(1)
        ld[z], g[z] = evaluate(rows_of(target, z), q[z])
    return q, p, ld, g


class HMCParams(NamedTuple):
    step_size: Tensor  # (B,) per-chain leapfrog step size
    inv_mass: Tensor  # (D,) diagonal inverse mass shared by all chains, or (B, D) in a population of targets
    trajectory_length: float | Tensor  # T: chain b takes ceil(u T / eps_b) steps, u ~ U(0, 1]; (B,) in a population
    per_chain = ("step_size",)  # how trex.population.merge_params joins the records of several targets


class HMCInfo(NamedTuple):
    """Info (see base.Info) plus what the adaptation needs.

    energy_error      (B,) H(end) - H(start); -inf when the start had log density -inf
    proposal          (B, D) end of the trajectory (before the accept/reject)
    velocity          (B, D) inv_mass * momentum at the end of the trajectory
    integration_time  (B,) num_steps * step_size
    guide_evals       int, batched gradient calls of the surrogate (0 without one)
    tune_prob         (B,) what step-size adaptation drives to target_accept: the acceptance, or with a
                      surrogate the acceptance of the surrogate's own energy (see HMC.step)
    chain_grad_evals  exact chain-gradient evaluations this step (a 0-d tensor: the chains' own steps
                      on a CPU, where finished chains leave the batch; chains × calls when masked)
    max_steps         int, the cap on leapfrog steps this step ran under (larger with a surrogate)
    """

    accept_prob: Tensor
    accepted: Tensor
    divergent: Tensor
    num_grad_evals: int
    num_evals: int
    step_size: Tensor
    num_steps: Tensor
    energy_error: Tensor
    proposal: Tensor
    velocity: Tensor
    integration_time: Tensor
    guide_evals: int
    tune_prob: Tensor
    chain_grad_evals: Tensor
    max_steps: int


class HMC:
    """Static-length HMC with jittered trajectory length, batched over chains.

    On a CPU each chain draws its own jitter u every step, and the leapfrog loop drops chains that
    have taken their steps out of the batch, so the cost is the sum of the chains' steps. On an
    accelerator one u serves all chains: the batch is masked there, and the longest chain would set
    every call's cost.

    pool_step_size=True (default) tunes one step size for all chains on their mean
    acceptance. Per-chain tuning (False) is noisy, and since a step costs T / min_b eps_b
    batched gradients, one chain whose step size collapses (e.g. near a NaN region)
    makes every step expensive for all chains.

    grad_dtype (e.g. torch.bfloat16) integrates the trajectory with gradients computed under
    autocast, which on CPUs with bf16 units costs about 0.6x as much, and then judges the end point
    with the exact (float32) log density. Leapfrog with any fixed vector field is reversible
    and volume-preserving, so the Metropolis step keeps the exact posterior; a rougher
    gradient only lowers acceptance. The state keeps the exact log density and the
    approximate gradient (the field the trajectories follow).

    surrogate=True goes further: the runner fits a small network of z to the classifier's
    probabilities (trex.surrogate) and hands the kernel a target with a `guide`
    (trex.surrogate.Guided): trajectories follow the guide's gradient, up to `surrogate_max_steps`
    leapfrog steps, with one exact forward pass per trajectory for the accept step. The same argument
    keeps the posterior exact. The first fit uses `surrogate_prior_draws` prior draws (forward passes
    only) before the first step, so warm-up never needs a classifier gradient; at `surrogate_at` of
    warm-up it is fit again on those plus every point the accept steps evaluated, which lie near the
    level sets. With surrogate_prior_draws=0 the warm-up up to `surrogate_at` uses exact gradients
    and there is one fit. A target whose mean acceptance (the last ~10 steps, at `surrogate_check` of
    warm-up, after the last fit) is below `surrogate_fallback` has a surrogate that misleads its
    trajectories: its chains follow the exact gradient from then on, up to `max_steps` leapfrog steps
    (None: never fall back).
    """

    name = "hmc"

    def __init__(self, step_size=0.1, trajectory_length=1.0, max_steps=64, jitter=True,
                 target_accept=0.8, adapt_mass=True, adapt_length=True,
                 pool_step_size=True, max_energy_error=1000.0, grad_dtype=None, surrogate=False,
                 surrogate_at=0.6, surrogate_max_steps=1000, surrogate_fit_steps=3000, surrogate_prior_draws=4096,
                 surrogate_fallback=0.1, surrogate_check=0.8):
        self.step_size, self.trajectory_length = step_size, trajectory_length
        self.max_steps, self.jitter, self.target_accept = max_steps, jitter, target_accept
        self.adapt_mass, self.adapt_length = adapt_mass, adapt_length
        self.pool_step_size = pool_step_size
        self.max_energy_error = max_energy_error
        if isinstance(grad_dtype, str):
            grad_dtype = getattr(torch, grad_dtype)
        self.grad_dtype = grad_dtype
        if surrogate and not 0.0 < surrogate_at < 1.0:
            raise UserError(f"surrogate_at is the share of warm-up before the surrogate is fit, in (0, 1); "
                             f"got {surrogate_at}")
        self.surrogate, self.surrogate_at = bool(surrogate), float(surrogate_at)
        self.surrogate_max_steps, self.surrogate_fit_steps = int(surrogate_max_steps), int(surrogate_fit_steps)
        self.surrogate_prior_draws = int(surrogate_prior_draws)
        if surrogate and surrogate_fallback is not None and not surrogate_at < surrogate_check < 1.0:
            raise UserError(f"surrogate_check is the share of warm-up where collapsed targets fall back to exact "
                             f"gradients, after the fit at surrogate_at={surrogate_at} and before the end (1); "
                             f"got {surrogate_check}")
        self.surrogate_fallback = None if surrogate_fallback is None else float(surrogate_fallback)
        self.surrogate_check = float(surrogate_check)

    def steps_cap(self, target=None) -> int:
        return self.surrogate_max_steps if _guide(target) is not None else self.max_steps

    def _field(self, target):
        """What trajectories follow: the target's guide (a surrogate) where it has one, else the target."""
        guide = _guide(target)
        return guide if guide is not None else target

    def _precision(self, device, target):
        if self.grad_dtype is None or _guide(target) is not None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.grad_dtype)

    def _exact(self, target, position, logdensity):
        """The float32 log density where the approximate one is finite (bad points stay bad)."""
        if self.grad_dtype is None and _guide(target) is None:
            return logdensity
        exact, _ = evaluate(target, position, with_grad=False)
        return torch.where(torch.isfinite(logdensity), exact, logdensity)

    def init(self, position: Tensor, target) -> State:
        position = position.detach()
        with self._precision(position.device, target):
            logdensity, grad = evaluate(self._field(target), position)
        return State(position, self._exact(target, position, logdensity), grad)

    def init_params(self, num_chains, dim, device=None, dtype=None) -> HMCParams:
        kw = dict(device=device, dtype=dtype or torch.get_default_dtype())
        return HMCParams(torch.full((num_chains,), float(self.step_size), **kw),
                         torch.ones(dim, **kw), float(self.trajectory_length))

    def step(self, state: State, target, params: HMCParams, generator=None):
        q0, ld0, g0 = state
        kw = dict(generator=generator, device=q0.device, dtype=q0.dtype)
        eps, inv_mass = params.step_size, params.inv_mass
        p0 = torch.randn(q0.shape, **kw) / inv_mass.sqrt()
        # On a CPU each chain draws its own jitter u ~ U(0, 1]: leapfrog compacts finished chains out of
        # the batch, so independent lengths cost their sum. On an accelerator the batch is masked, where the
        # longest chain sets every call's cost, so there one u serves all chains (as before).
        compacted = q0.device.type == "cpu"
        shape = q0.shape[:1] if compacted else ()
        u = 1.0 - torch.rand(shape, **kw) if self.jitter else torch.ones_like(eps)
        cap = self.steps_cap(target)
        n = torch.ceil(params.trajectory_length * u / eps).clamp(1, cap).long()
        guide = _guide(target)
        fell_back = getattr(guide, "mask", None)  # chains whose target follows exact gradients again
        if fell_back is not None:
            n = torch.where(fell_back, n.clamp(max=self.max_steps), n)
        num = int(n.max())
        with self._precision(q0.device, target):
            q1, p1, ld1, g1 = leapfrog(q0, p0, g0, eps, num, self._field(target), inv_mass, n, compact=compacted)
        ld1_guide = ld1
        ld1 = self._exact(target, q1, ld1)

        energy_error = (kinetic(p1, inv_mass) - ld1) - (kinetic(p0, inv_mass) - ld0)
        # `not <=` also catches NaN; a start at -inf gives energy_error -inf: always accept
        divergent = ~torch.isfinite(ld1) | ~(energy_error <= self.max_energy_error)
        log_accept = torch.where(divergent, torch.full_like(ld1, -math.inf),
                                 (-energy_error).clamp(max=0.0))
        accept_prob = torch.exp(log_accept)
        accepted = torch.rand(ld1.shape, **kw) < accept_prob
        a = accepted[:, None]
        new = State(torch.where(a, q1, q0), torch.where(accepted, ld1, ld0),
                    torch.where(a, g1, g0))
        tune = accept_prob
        if guide is not None:  # the classifier ran once, forward only (and along fallen-back chains' paths)
            grads, evals, guided = 0, 1, num
            # The step size only controls how well the guide's own energy is kept; the exact acceptance
            # also pays for the guide's misfit, which no step size removes, so tuning on it would
            # shrink the step towards 0 chasing an unreachable target_accept.
            guide_err = (kinetic(p1, inv_mass) - ld1_guide) - (kinetic(p0, inv_mass) - guide.logdensity(q0))
            tune = torch.exp(torch.nan_to_num(-guide_err, nan=-math.inf).clamp(max=0.0))
        else:
            grads, evals, guided = num, num + (self.grad_dtype is not None), 0
        if fell_back is not None:  # only the fallen-back chains took classifier gradients
            chain_grads = (n * fell_back).sum() if compacted else num * fell_back.sum()
        else:
            chain_grads = (n.sum() if compacted else torch.tensor(num * len(n))) if grads else torch.tensor(0)
        info = HMCInfo(accept_prob, accepted, divergent, grads, evals, eps, n, energy_error,
                       q1, inv_mass * p1, n.to(eps) * eps, guided, tune, chain_grads, cap)
        return new, info

    def adaptation(self, num_warmup: int) -> "HMCAdaptation":
        return HMCAdaptation(self, num_warmup)


def _guide(target):
    return getattr(target, "guide", None)


def mass_windows(num_warmup, init=75, term=50, base=25):
    """Stan's doubling windows as (start, end] warm-up step counts; [] if too short."""
    if num_warmup < 20:
        return []
    if init + term + base > num_warmup:
        init, term = int(0.15 * num_warmup), int(0.1 * num_warmup)
        base = num_warmup - init - term
    last, start, size, windows = num_warmup - term, init, base, []
    while start < last:
        end = start + size
        if end + 2 * size > last:  # the next window would not fit: stretch this one
            end = last
        windows.append((start, end))
        start, size = end, 2 * size
    return windows


class ChEES:
    """Trajectory length by ChEES (Hoffman, Radul & Sountsov 2021).

    Ascends E[(|q' - E q'|^2 - |q - E q|^2)^2] in log T with Adam (beta1 = 0), using
    acceptance-weighted cross-chain estimates; the final value is a moving average.
    Needs many chains (>= ~16) for a useful estimate; with fewer it only adds noise.
    The state is tensors and every branch a torch.where, so an update never waits for an
    accelerator (a skipped update, e.g. fewer than two usable chains, leaves the state as it was).
    """

    def __init__(self, length, lr=0.025, beta2=0.95, max_update=0.35, decay=0.5):
        self.log_t = torch.as_tensor(length, dtype=torch.float64).log()
        self.log_avg = self.log_t.clone()
        self.lr, self.beta2, self.max_update, self.decay = lr, beta2, max_update, decay
        self.v = torch.zeros((), dtype=torch.float64)
        self.t = torch.zeros((), dtype=torch.float64)  # updates taken; a tensor too, it depends on the data

    def update(self, start: Tensor, info: HMCInfo, max_steps: int) -> Tensor:
        dev = start.device
        log_t, log_avg, v, t = (x.to(dev) for x in (self.log_t, self.log_avg, self.v, self.t))
        ok = ~info.divergent
        w = torch.where(ok, info.accept_prob, torch.zeros_like(info.accept_prob)).double()
        w_sum = w.sum()
        prop = torch.where(ok[:, None], info.proposal, torch.zeros_like(info.proposal)).double()
        q1 = prop - (w[:, None] * prop).sum(0) / w_sum.clamp_min(1e-300)
        q0 = (start - start.mean(0)).double()
        g = info.integration_time.double() * ((q1 * q1).sum(-1) - (q0 * q0).sum(-1)) \
            * (q1 * info.velocity.double()).sum(-1)
        grad = (w * torch.where(ok, g, torch.zeros_like(g))).sum() / w_sum.clamp_min(1e-300)
        go = (ok.sum() >= 2) & (w_sum > 0) & torch.isfinite(grad)
        grad = torch.where(go, grad, torch.zeros_like(grad))
        t_new = t + 1
        v_new = self.beta2 * v + (1 - self.beta2) * grad**2
        v_hat = v_new / (1 - self.beta2**t_new)
        step = self.lr * grad / (v_hat.sqrt() + 1e-12)
        eps = info.step_size.double()
        lo, hi = eps.min().log(), (max_steps * eps.max()).log()
        new_t = torch.minimum(torch.maximum(log_t + step.clamp(-self.max_update, self.max_update), lo), hi)
        wt = t_new ** (-self.decay)
        new_avg = (1 - wt) * log_avg + wt * new_t
        self.log_t, self.log_avg = torch.where(go, new_t, log_t), torch.where(go, new_avg, log_avg)
        self.v, self.t = torch.where(go, v_new, v), torch.where(go, t_new, t)
        return self.log_t.exp().to(start.dtype)

    def final(self) -> Tensor:
        return self.log_avg.exp().float()


class HMCAdaptation:
    """Warm-up tuning for HMC; call update after every warm-up step, then final once.

    step size: dual averaging towards target_accept, per chain (or on the mean acceptance
        over chains if kernel.pool_step_size); final = averaged iterate.
    inv_mass: pooled-over-chains variance of warm-up positions in Stan's doubling windows;
        dual averaging restarts after each window because the metric changed.
    trajectory length: ChEES when kernel.adapt_length, else fixed.
    """

    def __init__(self, kernel: HMC, num_warmup: int):
        self.kernel = kernel
        self.windows = mass_windows(num_warmup) if kernel.adapt_mass else []
        self.m, self.da, self.var, self.prev = 0, None, None, None
        self.chees = None

    def __getstate__(self):  # a resume file keeps numbers and tensors; trex.resume binds the kernel again
        return {k: v for k, v in self.__dict__.items() if k != "kernel"}

    def update(self, params: HMCParams, state: State, info: HMCInfo) -> HMCParams:
        self.m += 1
        if self.da is None:
            self.da = DualAveraging(params.step_size, self.kernel.target_accept,
                                    pool=self.kernel.pool_step_size)
            if self.kernel.adapt_length:
                self.chees = ChEES(params.trajectory_length)
        if self.chees is not None and self.prev is not None:
            length = self.chees.update(self.prev, info, info.max_steps)
            params = params._replace(trajectory_length=length)
        self.prev = state.position
        params = params._replace(step_size=self.da.update(info.tune_prob))
        for start, end in self.windows:
            if start < self.m <= end:
                self.var = self.var or PooledVariance()
                self.var.add(state.position)
                if self.m == end:
                    inv_mass = self.var.variance().to(params.inv_mass)
                    params = params._replace(inv_mass=inv_mass)
                    self.var = None
                    self.da.restart(params.step_size)
        return params

    def final(self, params: HMCParams) -> HMCParams:
        if self.da is not None:
            params = params._replace(step_size=self.da.averaged())
        if self.chees is not None:
            params = params._replace(trajectory_length=self.chees.final())
        return params
