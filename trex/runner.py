"""One loop that drives any kernel over a population of chains, which may serve many targets
against the same models at once: initialisation, the warm-up stages (trex.stages), sampling with
thinning, checkpoint/resume, one progress bar, and one SampleSet per target at the end."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from trex import resume
from trex.diagnostics import ess_chain_sum, summarize
from trex.errors import UserError
from trex.plan import Plan
from trex.population import Population, merge_params, take
from trex.progress import progress_bar
from trex.recorder import LastProbs, Recorder
from trex.resampling import initial_positions, resample_state, systematic_resample  # noqa: F401 (public)
from trex.resume import weights_hash
from trex.results import SampleSet
from trex.stages import (Anneal, EndWarmup, FallBack, FitSurrogate, ReplaceStuck, Resample, RestartAdaptation, RunState,
                         prior_points, sigma_factor)
from trex.stuck import StuckWatch, stuck_chains
from trex.surrogate import PointTap, cache_path, load_cached
from trex.targets import slug


def sample(posterior, sampler, plan: Plan | None = None, checkpoint: str | Path | None = None, **plan_fields):
    """Run `sampler` on `posterior` as `plan` (a trex.Plan, or its fields as keyword arguments:
    num_chains, num_warmup, num_samples, thin, seed, init, ...) says; returns the kept draws as a SampleSet.

    `posterior` may also be a list of RelaxedPosteriors over the same generator and classifier: they are
    sampled as one population (num_chains chains for each target, every decode and classifier pass
    batched over all of them, adaptation and diagnostics per target), and a list of SampleSets comes
    back, one per target, each as a single-target run would give it. With a surrogate the population
    fits one for all targets (cached in `plan.surrogate_cache` by both models' weights).

    `resample=True` turns the annealed warm-up into a population (SMC-style) warm-up: each time σ
    shrinks, chains are resampled by how much more (or less) probable the new σ makes them, so chains
    stranded off the level set are replaced by copies of chains on it, and separate regions of the
    level set keep their posterior share of chains. With init='prior_resample' the weights start right.
    `replace_stuck` (on by default) replaces, during warm-up, only the chains that are stuck (see
    trex.stuck). Warm-up draws are discarded, so the kept draws are still plain MCMC on the final
    posterior; chains still stuck are listed in `diagnostics["stuck_chains"]`.

    With `checkpoint` set, the run state is written there every `checkpoint_every` steps and a run
    started again with the same plan continues from it, losing nothing; a run with any other plan,
    sampler setting, target list or model weights is refused with the names of what differs.
    """
    if plan is not None and plan_fields:
        raise TypeError("pass either plan= or its fields as keyword arguments, not both")
    plan = plan if plan is not None else Plan(**plan_fields)
    many = isinstance(posterior, (list, tuple))
    posts = list(posterior) if many else [posterior]
    if hasattr(sampler, "run"):  # whole-run backends (Pyro NUTS, hamiltorch) own their loop: one target each
        out = [_run_whole(p, sampler, plan) for p in posts]
    else:
        out = _run_population(posts, sampler, plan, checkpoint)
    return out if many else out[0]


def _meta(posterior, sampler, plan: Plan) -> dict:
    return {"target": str(posterior.target), "classes": posterior.classes, "sigma": posterior.sigma,
            "sampler": getattr(sampler, "name", type(sampler).__name__),
            **{k: v for k, v in plan.signed().items() if k != "init"},
            "init": plan.init if isinstance(plan.init, str) else "tensor", "tol": plan.tol,
            "signature": plan_signature(posterior, sampler, plan)}


def _sample_set(posterior, sampler, plan, arrays, step_size, counts, wall_s) -> SampleSet:
    meta = _meta(posterior, sampler, plan)
    meta.update(counts)
    arrays.setdefault("images", None)
    meta["wall_time_s"] = round(wall_s, 3)  # over every part of a resumed run
    out = SampleSet(**arrays, step_size=torch.as_tensor(step_size).float().cpu().numpy(),
                    ideal=posterior.target.ideal().numpy(), meta=meta)
    meta["diagnostics"] = _diagnostics(out)
    return out


def _run_whole(posterior, sampler, plan: Plan):
    """A backend that runs its own warm-up and sampling loop (Pyro NUTS, hamiltorch), at the final σ."""
    if plan.resample:
        raise UserError(f"resample=True needs a step-by-step kernel (HMC, RWM); {getattr(sampler, 'name', sampler)} "
                        f"runs its own warm-up at a fixed σ, so drop resample (init='prior_resample' still works)")
    start = time.time()
    dist, n = posterior.distribution, plan.num_chains
    gen = torch.Generator(device=dist.device).manual_seed(plan.seed)
    z0 = initial_positions(Population([posterior], n), n, gen, plan.init, plan.init_candidates)
    res = sampler.run(posterior, z0, num_warmup=plan.num_warmup, num_samples=plan.num_samples * plan.thin,
                      seed=plan.seed, progress=plan.progress)
    rec, prev = Recorder(plan.store_images), None
    for s in range(0, res.positions.shape[1], plan.thin):
        # NUTS has no accept/reject of one proposal: `accepted` says whether the chain moved, and the
        # acceptance reported is the mean acceptance probability of each tree, as for HMC's proposals
        pos = res.positions[:, s]
        moved = torch.ones(n, dtype=torch.bool) if prev is None else (pos != prev).any(-1)
        prob = res.accept_prob[:, s] if res.accept_prob is not None else torch.full((n,), float("nan"))
        rec.add(posterior, pos.to(dist.device, dist.dtype), res.logdensity[:, s], moved, res.divergent[:, s], prob)
        prev = pos
    counts = {"grad_evals": int(res.num_grad_evals), "batched_grad_evals": int(res.num_grad_evals),
              "sampler_wall_time_s": res.wall_time, "warmup_divergences": None}  # the backend does not say
    return _sample_set(posterior, sampler, plan, rec.split([slice(None)])[0], res.step_size, counts,
                       time.time() - start)


def plan_signature(posterior, sampler, plan: Plan) -> dict:
    return run_signature(posterior, sampler, **plan.signed())


def finished(folder, posterior, sampler, plan: Plan) -> SampleSet | None:
    """The SampleSet a run folder already holds for this target, if that run finished (no resume file
    left) with the same signature; None if there is none. One of another run is refused."""
    folder = Path(folder)
    if not (folder / "manifest.json").exists() or (folder / "resume.pt").exists():
        return None
    old = SampleSet.load(folder)
    if plan.store_images and old.images is None:
        return None  # kept without the images this run needs: sample it again
    new = json.loads(json.dumps(plan_signature(posterior, sampler, plan)))  # as the manifest keeps it
    resume.refuse_other_run(folder / "manifest.json", old.meta.get("signature"), new)
    print(f"{posterior.target}: finished earlier in {folder}, kept as it is (delete that folder to sample again)",
          flush=True)
    return old


def sample_in(folder, posteriors, sampler, plan: Plan, population: bool = False) -> list[SampleSet]:
    """One SampleSet per posterior, each target's place being folder/<slug>/: targets that finished
    there earlier with the same settings are read back (`finished`), the rest are sampled, either as one
    population (resumable from folder/resume.pt) or one run each (folder/<slug>/resume.pt)."""
    folder = Path(folder)
    done = {slug(p.target): finished(folder / slug(p.target), p, sampler, plan) for p in posteriors}
    todo = [p for p in posteriors if done[slug(p.target)] is None]
    for group in ([todo] if todo and population else [[p] for p in todo]):
        ck = folder / "resume.pt" if population else folder / slug(group[0].target) / "resume.pt"
        for p, res in zip(group, sample(group, sampler, plan, checkpoint=ck)):
            done[slug(p.target)] = res
    return [done[slug(p.target)] for p in posteriors]


def run_signature(posterior, kernel, **plan) -> dict:
    """Everything that defines a step-by-step run: the plan, the sampler and its settings, the target
    (a list of them for a population), σ, and a hash of both models' weights. A resume file from any
    other run is refused."""
    posts = list(posterior) if isinstance(posterior, (list, tuple)) else [posterior]
    settings = {f"sampler.{k}": repr(v) for k, v in sorted(vars(kernel).items()) if k[0] != "_"}
    init = plan["init"]
    if isinstance(init, torch.Tensor):
        plan["init"] = "tensor:" + weights_hash(torch.nn.ParameterList([torch.nn.Parameter(init.detach().cpu())]))
    one = len(posts) == 1 and not isinstance(posterior, (list, tuple))
    target = str(posts[0].target) if one else [str(p.target) for p in posts]
    sigma = posts[0].sigma if one else [p.sigma for p in posts]
    return {"target": target, "classes": list(posts[0].classes), "sigma": sigma, **plan,
            "sampler": getattr(kernel, "name", type(kernel).__name__), **settings,
            "models": models_hash(posts[0])}


def models_hash(posterior) -> str:
    models = [m for m in (getattr(posterior.distribution, "generator", None), posterior.classifier)
              if isinstance(m, torch.nn.Module)]
    return weights_hash(*models)


def _diagnostics(s: SampleSet) -> dict:
    lat = summarize(s.latents)
    cols = [k for k, v in enumerate(s.ideal) if v > 0] or list(range(s.probs.shape[-1]))
    conf = summarize(s.probs[:, :, cols])
    return {"rhat_max": float(np.max(lat["rhat"])), "ess_bulk_min": float(np.min(lat["ess"])),
            "rhat": np.asarray(lat["rhat"]).tolist(), "ess_bulk": np.asarray(lat["ess"]).tolist(),
            "ess_chain_sum_min": float(np.min(ess_chain_sum(s.latents))),
            "confidence_ess_bulk_min": float(np.min(conf["ess"])),
            "confidence_rhat_max": float(np.max(conf["rhat"])),
            "accept_rate": float(s.accepted.mean()), "accept_prob_mean": _mean_accept_prob(s),
            "divergences": int(s.divergent.sum()), "warmup_divergences": s.meta.get("warmup_divergences"),
            "near_target_0.1": s.near_target(0.1), "near_target_0.05": s.near_target(0.05),
            "near_target_tol": s.near_target(s.meta.get("tol", 0.1)),
            "stuck_chains": stuck_chains(s.distance(), s.accepted)}


def _mean_accept_prob(s: SampleSet):
    """The mean Metropolis acceptance probability of the kept transitions (NUTS: of its trees); the
    share of accepted proposals where a backend reports no probability."""
    p = s.accept_prob
    if p is None or np.isnan(p).all():
        return float(s.accepted.mean())
    return float(np.nanmean(p))


class _Context:
    """What a population run holds fixed: the population (at σ factor 1), kernel, plan, RNG, and
    where each target's chains sit in the batch."""

    def __init__(self, population: Population, kernel, plan: Plan, gen):
        self.population, self.kernel, self.plan, self.gen = population, kernel, plan, gen
        self.slices = population.slices()
        self.batch = population.size * plan.num_chains
        dist = population.distribution
        # the probabilities at each chain's position, kept from the run's own evaluations for the recorder
        self.memo = LastProbs(self.batch, dist.dim, len(population.members[0].classes), dist.device, dist.dtype)

    def distance(self, z: torch.Tensor) -> torch.Tensor:
        """Each chain's distance to its own target (σ plays no part), for the whole batch z (B, D): from
        the probabilities the run already has there (self.memo), the classifier only for the rest."""
        pop = self.population
        with torch.no_grad():
            return pop.distance(self.memo.probs_at(z, pop.probs))


def _stages(ctx: _Context, fit_at, cache):
    plan, kernel = ctx.plan, ctx.kernel
    schedule = plan.schedule
    anneal_end = schedule.end(plan.num_warmup) if hasattr(schedule, "end") else 0
    checks = StuckWatch(1, plan.num_warmup, anneal_end, "cpu", replace=plan.replace_stuck).checks
    fits = ([0] if getattr(kernel, "surrogate_prior_draws", 0) > 0 else []) + [fit_at]
    stages = [FitSurrogate(fits, kernel.surrogate_fit_steps, cache)] if fit_at is not None else []
    if fit_at is not None and getattr(kernel, "surrogate_fallback", None) is not None:
        stages.append(FallBack(max(int(kernel.surrogate_check * plan.num_warmup), fit_at + 1), kernel.surrogate_fallback))
    stages += [Anneal(plan)] + ([Resample(resample_state)] if plan.resample else [])
    return stages + [RestartAdaptation(anneal_end), ReplaceStuck(checks), EndWarmup(plan.num_warmup)], anneal_end


def _start(ctx: _Context, fit_at, cached, anneal_end) -> RunState:
    plan, kernel, pop = ctx.plan, ctx.kernel, ctx.population
    dist, C = pop.distribution, plan.num_chains
    tap = None
    if fit_at is not None and cached is None:
        tap = PointTap(seed=int(torch.randint(2**31, (), generator=ctx.gen, device=ctx.gen.device)))
    counts = {"grad_evals": 0, "batched_grad_evals": 0, "steps": 0, "resampled": 0, "replaced_stuck": 0,
              "earlier_s": 0.0, "resumes": [], "forward_evals": 0, "guide_evals": 0, "warmup_divergences": None}
    if cached is not None:
        counts["surrogate"] = cached[1]
    run = RunState(ctx, t=0, rec=Recorder(plan.store_images), counts=counts, tap=tap,
                   sigma_factor=sigma_factor(plan.schedule, 0, plan.num_warmup),
                   guide_net=None if cached is None else cached[0],
                   log_w=torch.zeros(ctx.batch, device=dist.device, dtype=torch.float64),  # SMC weights
                   accept_ema=None, exact_targets=[],
                   watch=[StuckWatch(C, plan.num_warmup, anneal_end, dist.device, replace=plan.replace_stuck)
                          for _ in ctx.slices],
                   params=[kernel.init_params(C, dist.dim, dist.device, dist.dtype) for _ in ctx.slices],
                   adapt=[kernel.adaptation(plan.num_warmup) for _ in ctx.slices])
    run.retarget()
    z0 = initial_positions(run.target if cached is None else pop.tempered(run.sigma_factor).tapped(tap),
                           C, ctx.gen, plan.init, plan.init_candidates)
    if tap is not None:  # the first fit's prior draws (the starts' candidates are in the tap already)
        prior_points(pop, tap, getattr(kernel, "surrogate_prior_draws", 0) - len(tap), ctx.gen)
    run.state = kernel.init(z0, run.target)
    return run


def _resumed(ctx: _Context, ck: dict, checkpoint) -> RunState:
    dist = ctx.population.distribution
    # the kept draws and the surrogate's points stay on the CPU; the rest goes where the models are
    fields = resume.to_device({k: ck[k] for k in RunState.SAVED if k not in ("guide_net", "rec", "tap")}, dist.device)
    net = ck["guide_net"]
    run = RunState(ctx, rec=ck["rec"], tap=ck["tap"], guide_net=None if net is None else net.to(dist.device), **fields)
    run.retarget()
    ctx.gen.set_state(ck["rng"])
    total = ctx.plan.total_steps
    run.counts["resumes"] = run.counts.get("resumes", []) + [{"from_step": run.t, "of": total,
                                                              "at": time.strftime("%Y-%m-%dT%H:%M:%S")}]
    print(f"resuming {_name(ctx.population)} from step {run.t} of {total} ({checkpoint})", flush=True)
    return run


def _name(pop: Population) -> str:
    return str(pop.members[0].target) if pop.size == 1 else f"{pop.size} targets"


def _run_population(posts, kernel, plan: Plan, checkpoint) -> list[SampleSet]:
    pop = Population(posts, plan.num_chains)
    dist, C = pop.distribution, plan.num_chains
    gen = torch.Generator(device=dist.device).manual_seed(plan.seed)
    ctx = _Context(pop, kernel, plan, gen)
    signature = run_signature(posts if len(posts) > 1 else posts[0], kernel, **plan.signed())
    # surrogate-gradient HMC: the points evaluated before fit_at train the surrogate the rest follows
    fit_at = int(kernel.surrogate_at * plan.num_warmup) if getattr(kernel, "surrogate", False) else None
    if fit_at is not None and fit_at < 1:
        raise ValueError(f"surrogate=True needs warm-up steps to learn from; num_warmup={plan.num_warmup} leaves none")
    cache = None
    if fit_at is not None and plan.surrogate_cache:
        cache = cache_path(plan.surrogate_cache, models_hash(posts[0]), {"hidden": 128, "depth": 3},
                           kernel.surrogate_fit_steps)
    stages, anneal_end = _stages(ctx, fit_at, cache)
    # read on the CPU (the generator's state and the kept draws live there); the run state moves to the device
    ck = resume.load(checkpoint, signature, kernel=kernel, recorder_class=Recorder, map_location="cpu")
    run = _resumed(ctx, ck, checkpoint) if ck is not None else \
        _start(ctx, fit_at, load_cached(cache, dist.device) if cache else None, anneal_end)
    part_start = time.time()
    warm_div = torch.zeros(ctx.batch, dtype=torch.long, device=dist.device)  # per chain; summed per target at the end
    chain_grads = torch.tensor(0, device=dist.device)  # exact chain-gradient evaluations of kernel steps
    total = plan.total_steps
    bar = progress_bar(total, run.t, f"sampling {_name(pop)}", plan.progress)
    acc_ema, near = None, float("nan")
    for t in range(run.t, total):
        for stage in stages:
            stage(run, t)
        ctx.memo.follow(run.state.position)  # a stage that moved chains evaluated them (or they get recomputed)
        warm = t < plan.num_warmup
        state, info = kernel.step(run.state, run.target, merge_params(run.params, C), gen)
        run.state = state
        ctx.memo.follow(state.position)
        for k, sl in enumerate(ctx.slices):  # adaptation and the stuck watch: per target
            part = take(info, sl, ctx.batch)
            run.watch[k].observe(part.accepted)
            if warm:
                run.params[k] = run.adapt[k].update(run.params[k], take(state, sl, ctx.batch), part)
        counts = run.counts
        counts["batched_grad_evals"] += int(info.num_grad_evals)
        chain_grads = chain_grads + getattr(info, "chain_grad_evals", 0)  # what was evaluated (RWM: nothing)
        counts["forward_evals"] += ctx.batch * (info.num_evals - info.num_grad_evals)
        counts["guide_evals"] += getattr(info, "guide_evals", 0)
        counts["steps"] += 1
        if warm:
            warm_div = warm_div + info.divergent.long()  # a tensor: no host sync per step
            a = info.accept_prob.detach().double()
            run.accept_ema = a if run.accept_ema is None else 0.9 * run.accept_ema + 0.1 * a  # read by FallBack
        elif (t - plan.num_warmup) % plan.thin == 0:
            p = run.rec.add(pop, state.position, state.logdensity, info.accepted, info.divergent, info.accept_prob,
                          known=ctx.memo)
            near = (ctx.population.distance(p) <= plan.tol).float().mean()
        if warm and plan.progress and t % 10 == 0:
            near = (ctx.distance(state.position) <= plan.tol).float().mean()
        a = info.accept_prob.float().mean()
        acc_ema = a if acc_ema is None else 0.9 * acc_ema + 0.1 * a  # tensors: read back only when shown
        bar.update(1)
        if plan.progress and (t % 10 == 0 or t + 1 == total):  # reading a number back waits for the device
            bar.set_postfix(phase="warmup" if warm else "sample", sigma=f"{run.sigma_factor:.3g}x",
                            acc=f"{float(acc_ema):.2f}", near=f"{float(near):.2f}",
                            eps=f"{float(info.step_size.float().mean()):.3g}", refresh=False)
        run.t = t + 1
        if checkpoint and run.t % plan.checkpoint_every == 0 and run.t < total:
            saved = run.saved()
            saved["counts"] = dict(counts, earlier_s=counts["earlier_s"] + time.time() - part_start,
                                   warmup_divergences=_per_target(counts["warmup_divergences"], warm_div, ctx),
                                   grad_evals=counts["grad_evals"] + int(chain_grads))
            resume.save(checkpoint, dict(saved, rng=gen.get_state(), signature=signature))
    bar.close()
    counts = dict(run.counts, warmup_divergences=_per_target(run.counts["warmup_divergences"], warm_div, ctx),
                  grad_evals=run.counts["grad_evals"] + int(chain_grads))
    wall = counts.pop("earlier_s") + time.time() - part_start
    if checkpoint and Path(checkpoint).exists():
        os.remove(checkpoint)  # finished: the SampleSets are the record now
    return _split(ctx, run, counts, wall)


def _per_target(earlier, per_chain: torch.Tensor, ctx: _Context) -> list[int]:
    """Warm-up divergences per target: this part's per-chain counts plus what earlier parts counted."""
    earlier = earlier if isinstance(earlier, list) else [0] * len(ctx.slices)
    return [int(e) + int(per_chain[sl].sum()) for e, sl in zip(earlier, ctx.slices)]


def _split(ctx: _Context, run: RunState, counts: dict, wall: float) -> list[SampleSet]:
    """One SampleSet per target; the counts and wall time are the whole population's."""
    pop, plan = ctx.population, ctx.plan
    stuck = counts.pop("stuck_after_warmup", None)
    divergences = counts.pop("warmup_divergences")
    if pop.size > 1:
        counts["population"] = {"targets": pop.size, "chains_per_target": plan.num_chains,
                                "note": "counts and wall time are for the whole population"}
    out = []
    for k, (post, arrays) in enumerate(zip(pop.members, run.rec.split(ctx.slices))):
        c = dict(counts, warmup_divergences=divergences[k])
        if "fallback" in counts:  # whether this target's own chains switched to exact gradients
            c["fallback"] = dict(counts["fallback"], exact_gradients=k in counts["fallback"]["targets"])
        if stuck is not None:
            c["stuck_after_warmup"] = stuck[k]
        step = run.params[k]
        step = step.step_size if hasattr(step, "step_size") else getattr(step, "scale", torch.zeros(plan.num_chains))
        out.append(_sample_set(post, ctx.kernel, plan, arrays, step, c, wall))
    return out
