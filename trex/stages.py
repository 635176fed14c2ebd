"""Warm-up stages: small objects the runner calls, in turn, before every step.

Each stage looks at the step number and, when it is its turn, changes the run state: the σ factor
(annealing), the chains (SMC resampling, stuck-chain replacement), the force field (surrogate fit)
or the tuned parameters (adaptation restart and end). None of them changes the posterior or the
kernel: a changed σ or a new surrogate gives a new view of the target (`RunState.retarget`).
Everything per target (adaptation, stuck watch, resampling) runs on that target's slice of chains.
"""
from __future__ import annotations

import time

import torch

from trex.population import put, take
from trex.surrogate import Guided, PartlyExact, SurrogatePosterior, fit_surrogate, save_cached


class RunState:
    """What changes while a run goes: the step, the chains, per-target parameters, adaptation and
    stuck watches, SMC weights, the kept draws, counts, the σ factor, the surrogate's points and net.
    `target` is the view the kernel sees now; it is rebuilt, never changed, by `retarget`."""

    SAVED = ("t", "state", "params", "adapt", "watch", "log_w", "rec", "counts", "sigma_factor", "tap", "guide_net",
             "accept_ema", "exact_targets")

    def __init__(self, ctx, **fields):
        self.ctx = ctx
        for k in self.SAVED:
            setattr(self, k, fields.get(k))
        self.target = None
        self.density_gain = None  # set by Anneal when σ changes, read by Resample

    def retarget(self, position=None):
        """A fresh view of the population at the current σ factor, tap and surrogate, and the chains'
        cached log density and gradient under it (one batched evaluation, counted)."""
        ctx = self.ctx
        view = ctx.population.tempered(self.sigma_factor).tapped(self.tap).remembered(ctx.memo)
        if self.guide_net is not None:
            guide = SurrogatePosterior(view, self.guide_net)
            mask = self._exact_rows()
            view = Guided(view, guide if mask is None else PartlyExact(guide, view, mask))
        self.target = view
        if position is not None:
            self.state = ctx.kernel.init(position, view)
            self.counts["batched_grad_evals"] += 1
            if self.state.grad is not None and self.guide_net is None:
                self.counts["grad_evals"] += len(position)

    def _exact_rows(self):
        """(B,) bool: the chains of the targets that fell back to exact gradients (None: no target did)."""
        if not self.exact_targets:
            return None
        mask = torch.zeros(self.ctx.batch, dtype=torch.bool, device=self.ctx.population.distribution.device)
        for k in self.exact_targets:
            mask[self.ctx.slices[k]] = True
        return mask

    def moved(self, k: int) -> None:
        """Target k's chains were put elsewhere (resampled, replaced): trajectory-length adaptation,
        which compares each chain's move with where it started, starts from the new positions."""
        adapt = self.adapt[k]
        if getattr(adapt, "prev", None) is not None:
            adapt.prev = take(self.state, self.ctx.slices[k], self.ctx.batch).position

    def saved(self) -> dict:
        return {k: getattr(self, k) for k in self.SAVED}


def sigma_factor(schedule, t: int, num_warmup: int) -> float:
    """The σ factor at warm-up step t. σ moves in 20 levels: each change costs a fresh gradient."""
    n = schedule.end(num_warmup) if hasattr(schedule, "end") else 0
    if n <= 0 or t >= n:
        return 1.0
    q = max(1, n // 20)
    return float(schedule.factor((t // q) * q, num_warmup))


class Anneal:
    """Lowers σ along the plan's schedule; the chains' cached densities follow."""

    def __init__(self, plan):
        self.schedule, self.num_warmup = plan.schedule, plan.num_warmup

    def __call__(self, run: RunState, t: int) -> None:
        f = sigma_factor(self.schedule, t, self.num_warmup) if t < self.num_warmup else 1.0
        run.density_gain = None
        if f != run.sigma_factor:
            before = run.state.logdensity
            run.sigma_factor = f
            run.retarget(run.state.position)
            run.density_gain = (run.state.logdensity - before).double()


class Resample:
    """SMC-style warm-up: each time σ shrinks, each target's chains gain weight by how much more
    probable the new σ makes them and are resampled when the weights' ESS falls below half; the
    last level always resamples, since the kept draws carry no weights."""

    def __init__(self, resample_fn):
        self.resample_fn = resample_fn

    def __call__(self, run: RunState, t: int) -> None:
        if run.density_gain is None:
            return
        ctx = run.ctx
        run.log_w = run.log_w + run.density_gain
        for k, sl in enumerate(ctx.slices):
            part, w, done = self.resample_fn(take(run.state, sl, ctx.batch), run.log_w[sl], ctx.gen,
                                             force=run.sigma_factor == 1.0)
            run.log_w = put_rows(run.log_w, sl, w)
            if done:
                run.state = put(run.state, sl, part)
                run.counts["resampled"] += 1
                run.moved(k)


def put_rows(x: torch.Tensor, sl, value: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[sl] = value
    return x


class RestartAdaptation:
    """When annealing ends the geometry has changed: kernels whose adaptation can restart do so."""

    def __init__(self, anneal_end: int):
        self.at = anneal_end

    def __call__(self, run: RunState, t: int) -> None:
        if t == self.at and t > 0:
            for k, adapt in enumerate(run.adapt):
                if hasattr(adapt, "restart"):
                    run.params[k] = adapt.restart(run.params[k])


class ReplaceStuck:
    """Every few warm-up steps after annealing, each target's stuck chains take the place of its
    moving ones (trex.stuck)."""

    def __init__(self, checks: set):
        self.checks = checks

    def __call__(self, run: RunState, t: int) -> None:
        if t not in self.checks:
            return
        ctx = run.ctx
        d = ctx.distance(run.state.position)
        any_moved = False
        for k, sl in enumerate(ctx.slices):
            watch = run.watch[k]
            before = watch.replaced
            part = watch.check(t, take(run.state, sl, ctx.batch), lambda _: d[sl], ctx.gen)
            if watch.replaced != before:
                run.state = put(run.state, sl, part)
                any_moved = True
        if any_moved:  # new positions: fresh cached densities and gradients, then tell the adaptation
            run.retarget(run.state.position)
            for k, watch in enumerate(run.watch):
                run.moved(k)
        run.counts["replaced_stuck"] = sum(w.replaced for w in run.watch)


class FitSurrogate:
    """Fit one surrogate of f(g(z)) for the whole population at each step of `at`, on the points the
    tap holds (prior draws, and every point evaluated since: accept steps land near the level sets),
    and let trajectories follow it; warm-up adaptation starts afresh for the new force field. The last
    fit is kept in the cache. After it, points are no longer collected."""

    def __init__(self, at: list[int], steps: int, cache: str | None):
        self.at, self.steps, self.cache = sorted(set(at)), steps, cache

    def __call__(self, run: RunState, t: int) -> None:
        if t not in self.at or run.tap is None:  # no tap: a cached surrogate serves the whole run
            return
        ctx = run.ctx
        start = time.time()
        device = ctx.population.distribution.device  # the points wait on the CPU; the fit goes where z lives
        net, report = fit_surrogate(run.tap.z.to(device), run.tap.p.to(device), steps=self.steps,
                                    population=ctx.population)
        report["fit_s"] = round(time.time() - start, 2)
        report["at_step"] = t
        last = t == self.at[-1]
        if last and self.cache:
            save_cached(self.cache, net, report)
        run.counts["surrogate"] = report
        run.counts.setdefault("surrogate_fits", []).append({k: v for k, v in report.items() if k != "regions"})
        run.guide_net = net
        if last:
            run.tap = None
        run.retarget(run.state.position)
        left = ctx.plan.num_warmup - t
        run.adapt = [ctx.kernel.adaptation(left) for _ in ctx.slices]


class FallBack:
    """At step `at` (after the last surrogate fit), each target whose chains' recent acceptance
    (run.accept_ema, the last ~10 steps) averages below `threshold` gets exact gradients for its
    trajectories from then on: the surrogate is too far off near its level set for the accept step to
    pass them. Its adaptation restarts, since its force field changed; the other targets keep theirs."""

    def __init__(self, at: int, threshold: float):
        self.at, self.threshold = at, threshold

    def __call__(self, run: RunState, t: int) -> None:
        if t != self.at or run.guide_net is None or run.accept_ema is None:
            return
        ctx = run.ctx
        acc = [float(run.accept_ema[sl].mean()) for sl in ctx.slices]
        new = [k for k, a in enumerate(acc) if a < self.threshold and k not in run.exact_targets]
        run.counts["fallback"] = {"at_step": t, "threshold": self.threshold,
                                  "accept": [round(a, 3) for a in acc], "targets": sorted(run.exact_targets + new)}
        if not new:
            return
        run.exact_targets = sorted(run.exact_targets + new)
        run.retarget(run.state.position)
        left = ctx.plan.num_warmup - t
        for k in new:
            run.adapt[k] = ctx.kernel.adaptation(left)
        names = ", ".join(str(ctx.population.members[k].target) for k in new)
        print(f"surrogate acceptance collapsed for {names} (below {self.threshold} at warm-up step {t}): "
              f"exact gradients for their chains from here on", flush=True)


def prior_points(population, tap, n: int, generator, chunk: int = 1024) -> None:
    """Feed `tap` n prior draws and their class probabilities (forward passes only)."""
    if n <= 0:
        return
    z = population.distribution.sample_prior(n, generator)
    with torch.no_grad():
        for c in z.split(chunk):
            tap(c, population.probs(c))


class EndWarmup:
    """At the end of warm-up: the tuned parameters' final values, and the chains still stuck."""

    def __init__(self, num_warmup: int):
        self.at = num_warmup

    def __call__(self, run: RunState, t: int) -> None:
        if t != self.at or self.at == 0:
            return
        ctx = run.ctx
        run.params = [a.final(p) for a, p in zip(run.adapt, run.params)]
        d = ctx.distance(run.state.position)
        stuck = []
        for k, sl in enumerate(ctx.slices):
            stuck.append(run.watch[k].stuck(d[sl]).nonzero().flatten().tolist())
        run.counts["stuck_after_warmup"] = stuck
