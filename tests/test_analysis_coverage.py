"""Level-set coverage on a 2-D ring posterior whose reachable share is known in closed form."""
import numpy as np
import pytest
import torch
from torch import nn

import trex
from trex.analysis.coverage import coverage, importance_weights, prior_pool, run_coverage
from trex.results import SampleSet

R, SIGMA = 2.0, 0.15  # the level set |z| = R under a N(0, I) prior, relaxed by σ


def ring_loglik(z):
    return -0.5 * ((np.linalg.norm(z, axis=1) - R) / SIGMA) ** 2


def radial_grid():
    """The posterior's density of ρ = |z| on a grid: ρ e^(-ρ²/2) (the prior in 2-D) times the likelihood."""
    rho = np.linspace(1e-4, 5, 20001)
    dens = rho * np.exp(-0.5 * rho ** 2 - 0.5 * ((rho - R) / SIGMA) ** 2)
    return rho, dens / dens.sum()


def posterior_draws(m, seed, upper_only=False):
    """m independent posterior draws: uniform angle (by symmetry), radius by inverse CDF."""
    rng = np.random.default_rng(seed)
    rho, p = radial_grid()
    r = np.interp(rng.random(m), np.cumsum(p), rho)
    a = rng.uniform(0, np.pi if upper_only else 2 * np.pi, m)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


@pytest.fixture(scope="module")
def pool():
    z = np.random.default_rng(0).normal(size=(60_000, 2))
    return z, ring_loglik(z)


def test_importance_weights_are_normalised_likelihoods_and_survive_underflow():
    w, ess = importance_weights(np.log([1.0, 2.0, 3.0, 4.0]))
    assert w == pytest.approx([0.1, 0.2, 0.3, 0.4]) and ess == pytest.approx(1 / 0.3)
    w, _ = importance_weights([-1000.0, -1001.0])  # exp() of either is 0 in float64
    assert w[0] == pytest.approx(1 / (1 + np.exp(-1)))


def test_chains_on_the_whole_ring_cover_it(pool):
    out = coverage(*pool, posterior_draws(2000, seed=1), radius=0.2)
    assert out["ess"] > 2000  # the estimate below is worth trusting
    assert out["coverage"] > 0.995


def test_chains_on_half_the_ring_cover_half_plus_the_radius_at_its_two_ends(pool):
    r = 0.2
    out = coverage(*pool, posterior_draws(2000, seed=2, upper_only=True), radius=r)
    # a lower-half point at angle θ below an end is in reach when ρ sin θ <= r: each end adds
    # arcsin(r / ρ) / (2π) of the mass, averaged over the posterior's radii
    rho, p = radial_grid()
    expected = 0.5 + (p * np.arcsin(np.minimum(r / rho, 1))).sum() / np.pi
    assert expected == pytest.approx(0.532, abs=0.002)
    assert out["coverage"] == pytest.approx(expected, abs=4 * out["se"] + 0.005)  # 0.005: the draws' spacing
    assert out["se"] < 0.012


def test_default_radius_scores_independent_posterior_draws_at_its_quantile(pool):
    # a fresh posterior draw is as far from the nearest of the kept draws as a kept one from the others
    m, q = 1000, 0.9
    out = coverage(*pool, posterior_draws(m, seed=3), quantile=q)
    quantile_noise = np.sqrt(q * (1 - q) / m)  # the radius is itself an empirical quantile of m distances
    assert out["coverage"] == pytest.approx(q, abs=4 * np.hypot(out["se"], quantile_noise))
    half = coverage(*pool, posterior_draws(m, seed=3, upper_only=True), quantile=q)
    assert 0.4 < half["coverage"] < 0.55  # reaching half of the mass scores about half of q (0.44-0.47 over seeds)


def test_prior_pool_and_run_coverage_against_a_real_posterior():
    torch.manual_seed(0)
    post = trex.RelaxedPosterior(trex.LatentGaussian(nn.Identity(), latent_dim=2), nn.Linear(2, 3), "class:0",
                                 sigma=0.3, classes=[0, 1, 2])
    z, ll = prior_pool(post, 500, seed=5, batch=64)
    zt = torch.from_numpy(z)
    assert torch.equal(zt, torch.randn(500, 2, generator=torch.Generator().manual_seed(5)))
    expected = post.logdensity(zt) - post.distribution.log_prior(zt)
    assert np.allclose(ll, expected.numpy(), atol=1e-5)
    # the chains' kept draws are the pool's first 400 draws; with thin=2 every second one is kept and
    # radius 0 reaches exactly those: the coverage is their share of the weight
    res = SampleSet(latents=z[:400].reshape(2, 200, 2), probs=np.zeros((2, 200, 3)), logdensity=np.zeros((2, 200)),
                    accepted=np.ones((2, 200), bool), divergent=np.zeros((2, 200), bool), step_size=np.ones(2),
                    ideal=np.eye(3)[0])
    out = run_coverage(res, post, pool_size=500, thin=2, radius=0.0, seed=5)
    w, _ = importance_weights(ll)
    assert out["coverage"] == pytest.approx(w[:400].reshape(2, 200)[:, ::2].sum(), abs=1e-12)
