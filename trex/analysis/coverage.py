"""How much of a target's level set do the chains reach?

Method. The relaxed posterior is p(z | u*) ∝ p(z) L(z), with L(z) = Π_k N(u*_k; u_k(f(g(z))), σ²)
the likelihood term at the run's σ. Draw a large pool z_1 … z_N from the prior p(z): self-normalised
importance weights w_n ∝ L(z_n) make it a weighted sample of the posterior that owes nothing to the
sampler, so it holds the parts of the level set the chains never visited. A pool draw is within
reach of the chains when its distance to the nearest kept draw is at most r, and

    coverage = Σ_n w_n 1[d(z_n, nearest kept draw) <= r] / Σ_n w_n,

the share of posterior mass within r of where the chains went.

The radius r is given, or else the `quantile` (default 0.95) of the kept draws' leave-one-out
nearest-neighbour distances: the chains' own scale. A fresh posterior draw lies as far from the
nearest of M independent posterior draws as one of them lies from the nearest of the others, so
draws that explore the whole posterior score ≈ quantile, and draws that reach only half of its
mass ≈ half that. Autocorrelated draws sit close to their neighbours and shrink r (coverage reads
low): thin them first, or pass r.

Trust. ess = (Σ w)² / Σ w² is how many independent posterior draws the pool is worth, and
se = sqrt(c (1 - c) / ess) the Monte Carlo standard error of the coverage c. A prior pool rarely
lands on a narrow level set (ess ≪ N); with an ess in the tens the number means little.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors


def importance_weights(log_likelihood) -> tuple[np.ndarray, float]:
    """Self-normalised weights (N,) from log-likelihoods of prior draws, and their ESS."""
    ll = np.asarray(log_likelihood, dtype=np.float64)
    w = np.exp(ll - ll.max())  # shift first: at σ = 0.05 log-likelihoods reach -1e3 and exp underflows
    w /= w.sum()
    return w, float(1.0 / (w ** 2).sum())


def chain_radius(kept, quantile: float = 0.95) -> float:
    """The `quantile` of the kept draws' distances to their nearest other kept draw."""
    d, _ = NearestNeighbors(n_neighbors=2).fit(kept).kneighbors(kept)
    return float(np.quantile(d[:, 1], quantile))


def coverage(pool, log_likelihood, kept, radius: float | None = None, quantile: float = 0.95) -> dict:
    """Share of the posterior mass (prior pool (N, D) weighted by its log-likelihoods (N,)) within
    `radius` of the kept draws (M, D). Returns coverage, its se, the weights' ess, radius, pool size."""
    pool, kept = np.asarray(pool, dtype=np.float64), np.asarray(kept, dtype=np.float64)
    if len(pool) != len(log_likelihood):
        raise ValueError(f"{len(pool)} pool draws but {len(log_likelihood)} log-likelihoods")
    w, ess = importance_weights(log_likelihood)
    r = chain_radius(kept, quantile) if radius is None else float(radius)
    d, _ = NearestNeighbors(n_neighbors=1).fit(kept).kneighbors(pool)
    c = float(w[d[:, 0] <= r].sum())
    return {"coverage": c, "se": float(np.sqrt(c * (1 - c) / ess)), "ess": ess, "radius": r, "pool": len(pool)}


@torch.no_grad()
def prior_pool(posterior, n: int, seed: int = 0, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """n prior draws of a RelaxedPosterior's distribution (N, D) and their log-likelihood at its σ (N,)."""
    gen = torch.Generator(device=getattr(posterior.distribution, "device", "cpu")).manual_seed(seed)
    z = posterior.distribution.sample_prior(n, generator=gen)
    ll = torch.cat([posterior.log_likelihood(posterior.probs(c)) for c in z.split(batch)])
    return z.cpu().numpy(), ll.cpu().numpy()


def run_coverage(res, posterior, pool_size: int = 100_000, thin: int = 1, radius: float | None = None,
                 quantile: float = 0.95, seed: int = 0) -> dict:
    """`coverage` of a SampleSet's kept latents (every `thin`-th draw of each chain) against a fresh
    prior pool of its posterior."""
    z, ll = prior_pool(posterior, pool_size, seed=seed)
    kept = res.latents[:, ::thin].reshape(-1, res.latents.shape[-1])
    return coverage(z, ll, kept, radius=radius, quantile=quantile)
