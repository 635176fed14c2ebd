"""One loop that drives any kernel: initialisation, warm-up (σ annealing + adaptation),
sampling with thinning, checkpoint/resume, a progress bar, and the SampleSet at the end."""
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
from trex.plan import INITS, Plan
from trex.progress import progress_bar
from trex.resume import weights_hash
from trex.results import SampleSet
from trex.schedules import make_schedule
from trex.stuck import StuckWatch, stuck_chains
from trex.surrogate import PointTap, SurrogatePosterior, fit_surrogate


def initial_positions(posterior, num_chains: int, generator: torch.Generator, init="prior_best",
                      candidates: int = 16, batch: int = 1024) -> torch.Tensor:
    """Starting latents from num_chains × candidates prior draws (or a given tensor).

    'prior': the first num_chains draws. 'prior_best': the num_chains most probable, which starts
    chains near the level set u = u* but over-weights wherever the likelihood peaks.
    'prior_resample': num_chains drawn by systematic resampling with weights ∝ likelihood (the
    posterior at the current σ over the prior), an importance-resampled start whose regions carry
    their posterior mass; the population `resample=True` keeps weighted as σ shrinks.
    """
    dist = posterior.distribution
    if isinstance(init, torch.Tensor):
        if init.shape != (num_chains, posterior.dim):
            raise ValueError(f"init has shape {tuple(init.shape)}, expected ({num_chains}, {posterior.dim})")
        return init.to(dist.device, dist.dtype)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS} or a tensor, got {init!r}")
    if init == "prior":
        return dist.sample_prior(num_chains, generator)
    z = dist.sample_prior(num_chains * max(1, candidates), generator)
    with torch.no_grad():
        lp = torch.cat([posterior.logdensity(c) for c in z.split(batch)])
    lp = torch.nan_to_num(lp, nan=-float("inf"))
    idx = systematic_resample(lp - dist.log_prior(z), num_chains, generator) if init == "prior_resample" else None
    return z[lp.topk(num_chains).indices if idx is None else idx]  # prior_best, or no finite weight




def _weights(log_weights: torch.Tensor):
    """Normalised float64 weights from log weights (NaN counts as zero weight); None if none is finite.
    torch.nan_to_num is not used because it would also turn -inf into a finite number."""
    log_w = torch.where(torch.isnan(log_weights), -float("inf"), log_weights).double()
    return torch.softmax(log_w, 0) if torch.isfinite(log_w).any() else None


def _systematic(w: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    u = (torch.rand((), generator=generator, device=w.device, dtype=w.dtype) + torch.arange(n, device=w.device)) / n
    return torch.searchsorted(w.cumsum(0), u).clamp(max=len(w) - 1)


def systematic_resample(log_weights: torch.Tensor, n: int, generator: torch.Generator):
    """n indices drawn with probability ∝ exp(log_weights), by systematic resampling (one uniform,
    n evenly spaced points: lower variance than multinomial). None if no weight is finite."""
    w = _weights(log_weights)
    return None if w is None else _systematic(w, n, generator)


def resample_state(state, log_weights: torch.Tensor, generator: torch.Generator, min_ess: float = 0.5,
                   force: bool = False):
    """Resample the chains of `state` (a namedtuple of per-chain tensors) by their accumulated
    importance weights when the weights' ESS is below min_ess × chains, or always with `force`.
    Returns (state, log_weights, resampled): the weights restart at 0 after a resample."""
    w = _weights(log_weights)
    if w is None:  # nothing to go by: restart the weights, keep the chains
        return state, torch.zeros_like(log_weights), False
    if not force and 1.0 / float((w * w).sum()) >= min_ess * len(w):
        return state, log_weights, False
    idx = _systematic(w, len(w), generator)
    return type(state)(*(None if x is None else x[idx] for x in state)), torch.zeros_like(log_weights), True


class _Recorder:
    """Collects kept draws on the CPU; decodes images and class probabilities once per kept step."""

    def __init__(self, store_images: bool):
        self.store_images = store_images
        self.rows = {k: [] for k in ("latents", "probs", "logdensity", "accepted", "accept_prob", "divergent",
                                     "images")}

    def add(self, posterior, position, logdensity, accepted, divergent, accept_prob):
        with torch.no_grad():
            x = posterior.distribution.decode(position)
            p = posterior.probs(position, images=x)
        self.rows["latents"].append(position.float().cpu())
        self.rows["probs"].append(p.float().cpu())
        self.rows["logdensity"].append(logdensity.float().cpu())
        self.rows["accepted"].append(accepted.cpu())
        self.rows["accept_prob"].append(accept_prob.float().cpu())
        self.rows["divergent"].append(divergent.cpu())
        if self.store_images:
            self.rows["images"].append((x.clamp(0, 1) * 255).round().to(torch.uint8).cpu())
        return p

    def __len__(self):
        return len(self.rows["latents"])

    def arrays(self) -> dict:
        # stacked as (S, C, ...) then chains first: (C, S, ...)
        return {k: torch.stack(v).transpose(0, 1).numpy() for k, v in self.rows.items() if v}


def sample(posterior, sampler, plan: Plan | None = None, checkpoint: str | Path | None = None, **plan_fields) -> SampleSet:
    """Run `sampler` on `posterior` as `plan` (a trex.Plan, or its fields as keyword arguments:
    num_chains, num_warmup, num_samples, thin, seed, init, ...) says; returns the kept draws as a SampleSet.

    `resample=True` turns the annealed warm-up into a population (SMC-style) warm-up: each time σ
    shrinks, chains are resampled by how much more (or less) probable the new σ makes them, so chains
    stranded off the level set are replaced by copies of chains on it, and separate regions of the
    level set keep their posterior share of chains. With init='prior_resample' the weights start right.
    `replace_stuck` (on by default) replaces, during warm-up, only the chains that are stuck (see
    trex.stuck). Warm-up draws are discarded, so the kept draws are still plain MCMC on the final
    posterior; chains still stuck are listed in `diagnostics["stuck_chains"]`.

    With `checkpoint` set, the run state is written there every `checkpoint_every` steps and a run
    started again with the same plan continues from it, losing nothing; a run with any other plan,
    sampler setting or model weights is refused with the names of what differs.
    """
    if plan is not None and plan_fields:
        raise TypeError("pass either plan= or its fields as keyword arguments, not both")
    plan = plan if plan is not None else Plan(**plan_fields)
    device = posterior.distribution.device
    gen = torch.Generator(device=device).manual_seed(plan.seed)
    start = time.time()
    meta = {"target": str(posterior.target), "classes": posterior.classes, "sigma": posterior.sigma,
            "sampler": getattr(sampler, "name", type(sampler).__name__),
            **{k: v for k, v in plan.signed().items() if k != "init"},
            "init": plan.init if isinstance(plan.init, str) else "tensor", "tol": plan.tol,
            "signature": plan_signature(posterior, sampler, plan)}
    if hasattr(sampler, "run"):  # whole-run backends (Pyro NUTS, hamiltorch) own their loop
        rec, step_size, counts = _run_whole(posterior, sampler, plan, gen)
    else:
        try:
            rec, step_size, counts = _run_kernel(posterior, sampler, plan, gen, checkpoint, meta["signature"])
        finally:  # the kernel and posterior may serve the next target: leave them as they came
            posterior.tap = None
            posterior.sigma_factor = 1.0
            if getattr(sampler, "surrogate", False):
                sampler.guide = None
    earlier_s = counts.pop("earlier_s", 0.0)
    meta.update(counts)
    arrays = rec.arrays()
    arrays.setdefault("images", None)
    meta["wall_time_s"] = round(earlier_s + time.time() - start, 3)  # over every part of a resumed run
    out = SampleSet(**arrays, step_size=torch.as_tensor(step_size).float().cpu().numpy(),
                    ideal=posterior.target.ideal().numpy(), meta=meta)
    meta["diagnostics"] = _diagnostics(out)
    return out


def _run_whole(posterior, sampler, plan: Plan, gen):
    """A backend that runs its own warm-up and sampling loop (Pyro NUTS, hamiltorch), at the final σ."""
    if plan.resample:
        raise UserError(f"resample=True needs a step-by-step kernel (HMC, RWM); {getattr(sampler, 'name', sampler)} "
                        f"runs its own warm-up at a fixed σ, so drop resample (init='prior_resample' still works)")
    dist, n = posterior.distribution, plan.num_chains
    z0 = initial_positions(posterior, n, gen, plan.init, plan.init_candidates)
    posterior.sigma_factor = 1.0
    res = sampler.run(posterior, z0, num_warmup=plan.num_warmup, num_samples=plan.num_samples * plan.thin,
                      seed=plan.seed, progress=plan.progress)
    rec, prev = _Recorder(plan.store_images), None
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
    return rec, res.step_size, counts


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


def run_signature(posterior, kernel, **plan) -> dict:
    """Everything that defines a step-by-step run: the plan, the sampler and its settings, the target,
    σ, and a hash of both models' weights. A resume file from any other run is refused."""
    # public attributes are the sampler's settings; the guide is run state, not a setting
    settings = {f"sampler.{k}": repr(v) for k, v in sorted(vars(kernel).items()) if k != "guide" and k[0] != "_"}
    init = plan["init"]
    if isinstance(init, torch.Tensor):
        plan["init"] = "tensor:" + weights_hash(torch.nn.ParameterList([torch.nn.Parameter(init.detach().cpu())]))
    models = [m for m in (getattr(posterior.distribution, "generator", None), posterior.classifier)
              if isinstance(m, torch.nn.Module)]
    return {"target": str(posterior.target), "classes": list(posterior.classes), "sigma": posterior.sigma, **plan,
            "sampler": getattr(kernel, "name", type(kernel).__name__), **settings,
            "models": weights_hash(*models)}


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


def _run_kernel(posterior, kernel, plan: Plan, gen, checkpoint, signature):
    num_chains, num_warmup, thin, tol = plan.num_chains, plan.num_warmup, plan.thin, plan.tol
    schedule, total, progress = plan.schedule, plan.total_steps, plan.progress
    dist = posterior.distribution
    # read on the CPU (the generator's state and the kept draws live there); the run state moves to the device
    ck = resume.load(checkpoint, signature, kernel=kernel, recorder_class=_Recorder, map_location="cpu")
    log_w = torch.zeros(num_chains, device=dist.device, dtype=torch.float64)  # SMC weights (resample=True)
    # surrogate-gradient HMC: the points evaluated before fit_at train the surrogate the rest follows
    fit_at = int(kernel.surrogate_at * num_warmup) if getattr(kernel, "surrogate", False) else None
    if fit_at is not None and fit_at < 1:
        raise ValueError(f"surrogate=True needs warm-up steps to learn from; num_warmup={num_warmup} leaves none")
    tap = PointTap(seed=int(torch.randint(2**31, (), generator=gen, device=gen.device))) if fit_at is not None else None
    anneal_end = schedule.end(num_warmup) if hasattr(schedule, "end") else 0
    watch = StuckWatch(num_chains, num_warmup, anneal_end, dist.device, replace=plan.replace_stuck)
    if ck is not None:
        t0, state, params, adapt, rec, counts = ck["t"], ck["state"], ck["params"], ck["adapt"], ck["rec"], ck["counts"]
        state, params, adapt, log_w, watch = resume.to_device((state, params, adapt, ck["log_w"], ck["watch"]),
                                                              dist.device)
        tap = posterior.tap = ck["tap"]  # kept only while points are still being collected
        if ck["guide_net"] is not None:
            kernel.guide = SurrogatePosterior(posterior, ck["guide_net"].to(dist.device))
        gen.set_state(ck["rng"])
        posterior.sigma_factor = ck["sigma_factor"]
        counts["resumes"] = counts.get("resumes", []) + [{"from_step": t0, "of": total,
                                                          "at": time.strftime("%Y-%m-%dT%H:%M:%S")}]
        print(f"resuming {posterior.target} from step {t0} of {total} ({checkpoint})", flush=True)
    else:
        t0, rec = 0, _Recorder(plan.store_images)
        counts = {"grad_evals": 0, "batched_grad_evals": 0, "steps": 0, "resampled": 0, "replaced_stuck": 0,
                  "earlier_s": 0.0, "resumes": []}
        posterior.sigma_factor = _factor(schedule, 0, num_warmup)
        posterior.tap = tap
        z0 = initial_positions(posterior, num_chains, gen, plan.init, plan.init_candidates)
        state = kernel.init(z0, posterior)
        params = kernel.init_params(num_chains, dist.dim, dist.device, dist.dtype)
        adapt = kernel.adaptation(num_warmup)
    part_start = time.time()
    warm_div = torch.tensor(counts.get("warmup_divergences", 0), device=dist.device)
    chain_grads = torch.tensor(counts.get("grad_evals", 0), device=dist.device)  # chain-gradient evaluations
    bar = progress_bar(total, t0, f"sampling {posterior.target}", progress)
    acc_ema, near = None, float("nan")

    def distance(z):
        with torch.no_grad():
            return posterior.distance(posterior.probs(z))

    for t in range(t0, total):
        if t == fit_at:
            state, adapt = _fit_guide(posterior, kernel, tap, state, counts, num_warmup, fit_at)
        warm = t < num_warmup
        f = _factor(schedule, t, num_warmup) if warm else 1.0
        if f != posterior.sigma_factor:  # the density changed: recompute the cached values
            before = state.logdensity
            posterior.sigma_factor = f
            state = kernel.init(state.position, posterior)
            counts["batched_grad_evals"] += 1
            chain_grads += num_chains if state.grad is not None else 0
            if plan.resample and warm:  # SMC: each chain's weight gains new density over old
                log_w = log_w + (state.logdensity - before).double()
                # the kept draws carry no weights, so the last level always resamples
                state, log_w, done = resample_state(state, log_w, gen, force=f == 1.0)
                counts["resampled"] = counts.get("resampled", 0) + int(done)
                if done:
                    _moved(adapt, state)
        if warm and t == anneal_end and t > 0 and hasattr(adapt, "restart"):
            params = adapt.restart(params)  # the geometry changed during annealing: adapt afresh
        if warm and t in watch.checks:
            before = watch.replaced
            state = watch.check(t, state, distance, gen)
            if watch.replaced != before:  # new positions: fresh cached density and gradient
                state = kernel.init(state.position, posterior)
                counts["batched_grad_evals"] += 1
                chain_grads += num_chains if state.grad is not None else 0
                _moved(adapt, state)
            counts["replaced_stuck"] = watch.replaced
        if t == num_warmup:
            params = adapt.final(params) if num_warmup > 0 else params
            if num_warmup > 0:
                counts["stuck_after_warmup"] = watch.stuck(distance(state.position)).nonzero().flatten().tolist()
        state, info = kernel.step(state, posterior, params, gen)
        watch.observe(info.accepted)
        counts["batched_grad_evals"] += int(info.num_grad_evals)
        chain_grads += getattr(info, "chain_grad_evals", 0)  # what was evaluated (RWM: nothing)
        counts["forward_evals"] = counts.get("forward_evals", 0) + num_chains * (info.num_evals - info.num_grad_evals)
        counts["guide_evals"] = counts.get("guide_evals", 0) + getattr(info, "guide_evals", 0)
        counts["steps"] += 1
        if warm:
            params = adapt.update(params, state, info)
            warm_div += info.divergent.sum()  # a tensor: no host sync per step
        elif (t - num_warmup) % thin == 0:
            p = rec.add(posterior, state.position, state.logdensity, info.accepted, info.divergent, info.accept_prob)
            near = (posterior.distance(p) <= tol).float().mean()
        if warm and progress and t % 10 == 0:
            near = (distance(state.position) <= tol).float().mean()
        a = info.accept_prob.float().mean()
        acc_ema = a if acc_ema is None else 0.9 * acc_ema + 0.1 * a  # tensors: read back only when shown
        bar.update(1)
        if progress and (t % 10 == 0 or t + 1 == total):  # reading a number back waits for the device
            bar.set_postfix(phase="warmup" if warm else "sample", sigma=f"{posterior.sigma * posterior.sigma_factor:.3g}",
                            acc=f"{float(acc_ema):.2f}", near=f"{float(near):.2f}",
                            eps=f"{float(info.step_size.float().mean()):.3g}", refresh=False)
        if checkpoint and (t + 1) % plan.checkpoint_every == 0 and t + 1 < total:
            saved = dict(counts, earlier_s=counts["earlier_s"] + time.time() - part_start,
                         warmup_divergences=int(warm_div), grad_evals=int(chain_grads))
            resume.save(checkpoint, {"t": t + 1, "state": state, "params": params, "adapt": adapt, "rec": rec,
                                     "counts": saved, "rng": gen.get_state(), "signature": signature,
                                     "log_w": log_w, "watch": watch, "sigma_factor": posterior.sigma_factor,
                                     "tap": tap if fit_at is not None and t + 1 <= fit_at else None,
                                     "guide_net": getattr(getattr(kernel, "guide", None), "net", None)})
    bar.close()
    counts["warmup_divergences"] = int(warm_div)
    counts["grad_evals"] = int(chain_grads)
    step_size = params.step_size if hasattr(params, "step_size") else getattr(params, "scale", torch.zeros(num_chains))
    if checkpoint and Path(checkpoint).exists():
        os.remove(checkpoint)  # finished: the SampleSet is the record now
    return rec, step_size, counts


def _moved(adapt, state) -> None:
    """Chains were put somewhere else (resampled, replaced): trajectory-length adaptation, which
    compares each chain's move with where it started, must start from the new positions."""
    if getattr(adapt, "prev", None) is not None:
        adapt.prev = state.position


def _fit_guide(posterior, kernel, tap, state, counts, num_warmup, fit_at):
    """Fit the surrogate on the tapped points and let the kernel follow it from now on; the rest of
    warm-up adapts step size, metric and trajectory length afresh for the new force field."""
    posterior.tap = None
    t = time.time()
    device = posterior.distribution.device  # the points wait on the CPU; the fit and the net go where z lives
    net, report = fit_surrogate(tap.z.to(device), tap.p.to(device), steps=kernel.surrogate_fit_steps)
    report["fit_s"] = round(time.time() - t, 2)
    counts["surrogate"] = report
    kernel.guide = SurrogatePosterior(posterior, net)
    return kernel.init(state.position, posterior), kernel.adaptation(num_warmup - fit_at)


def _factor(schedule, t, num_warmup) -> float:
    # Changing σ forces a fresh gradient; 20 levels keep that cost small.
    n = schedule.end(num_warmup) if hasattr(schedule, "end") else 0
    if n <= 0 or t >= n:
        return 1.0
    q = max(1, n // 20)
    return float(schedule.factor((t // q) * q, num_warmup))
