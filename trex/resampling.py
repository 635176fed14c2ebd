"""Where chains start, and importance resampling (the start 'prior_resample' and the SMC warm-up)."""
from __future__ import annotations

import torch

from trex.plan import INITS


def initial_positions(posterior, num_chains: int, generator: torch.Generator, init="prior_best",
                      candidates: int = 16, batch: int = 1024) -> torch.Tensor:
    """Starting latents for every target of `posterior` (a trex.population.Population), num_chains
    each, rows in the population's order (or a given (targets × num_chains, D) tensor). Each target
    picks from its own num_chains × candidates prior draws, as a single-target run does, so a target
    starts the same way alone or in a population; the draws of all targets are decoded and
    classified in one batch (and, with a surrogate, all of them teach it).

    'prior': each target's own first num_chains draws. 'prior_best': the num_chains most probable
    under each target, which starts chains near the level set u = u* but over-weights wherever the
    likelihood peaks. 'prior_resample': num_chains drawn by systematic resampling with weights ∝ the
    target's likelihood (the posterior at the current σ over the prior), an importance-resampled start
    whose regions carry their posterior mass; the population `resample=True` keeps weighted as σ shrinks.
    """
    dist, n_targets = posterior.distribution, posterior.size
    total = num_chains * n_targets
    if isinstance(init, torch.Tensor):
        if init.shape != (total, posterior.dim):
            raise ValueError(f"init has shape {tuple(init.shape)}, expected ({total}, {posterior.dim}): "
                             f"{num_chains} chains for each of {n_targets} targets")
        return init.to(dist.device, dist.dtype)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS} or a tensor, got {init!r}")
    if init == "prior":
        return dist.sample_prior(total, generator)
    z = dist.sample_prior(total * max(1, candidates), generator)
    with torch.no_grad():
        probs = torch.cat([posterior.probs(c) for c in z.split(batch)])
        if posterior.tap is not None:  # prior draws teach the surrogate too
            posterior.tap(z, probs)
    picks, n = [], num_chains * max(1, candidates)
    for k, m in enumerate(posterior.tempered_members):
        zk, pk = z[k * n:(k + 1) * n], probs[k * n:(k + 1) * n]
        lik = torch.nan_to_num(m.log_likelihood(pk), nan=-float("inf"))
        idx = systematic_resample(lik, num_chains, generator) if init == "prior_resample" else None
        # prior_best, or no finite weight: the most probable under this target
        picks.append(zk[(lik + dist.log_prior(zk)).topk(num_chains).indices if idx is None else idx])
    return torch.cat(picks)


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
