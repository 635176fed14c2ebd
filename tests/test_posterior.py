"""The relaxed posterior: value against Eq. 1 by hand, gradient against finite differences."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import trex
from trex.targets import TargetError


class Identity(nn.Module):
    latent_dim = 3

    def forward(self, z):
        return z


def linear_posterior(target, sigma=0.05, k=4):
    torch.manual_seed(0)
    clf = nn.Linear(3, k).double()
    post = trex.RelaxedPosterior(trex.LatentGaussian(Identity().double(), 3), clf, target, sigma=sigma,
                                 classes=list(range(k)))
    return post, clf


def by_hand(z, clf, u_fn, u_star, sigmas):
    """log N(z; 0, I) + sum_k log N(u*_k; u_k(f(z)), sigma_k^2), in numpy."""
    W, b = clf.weight.detach().numpy(), clf.bias.detach().numpy()
    logits = z @ W.T + b
    f = np.exp(logits - logits.max(-1, keepdims=True))
    f /= f.sum(-1, keepdims=True)
    u = u_fn(f)
    prior = -0.5 * (z ** 2).sum(-1) - 1.5 * math.log(2 * math.pi)
    lik = sum(-0.5 * ((u[:, m] - u_star[m]) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
              for m, s in enumerate(sigmas))
    return prior + lik


@pytest.mark.parametrize("spec,u_fn,u_star", [
    ("class:2", lambda f: f[:, [2]], [1.0]),
    ("ambiguous:0,3", lambda f: np.stack([abs(f[:, 0] - f[:, 3]),
                                          np.minimum(f[:, 0], f[:, 3]) - np.maximum(f[:, 1], f[:, 2])], -1), [0, .5]),
    ("uniform", lambda f: (f.max(-1) - f.min(-1))[:, None], [0.0]),
    ("p:1=0.25,2=0.75", lambda f: f, [0, .25, .75, 0]),
])
def test_value_matches_eq1(spec, u_fn, u_star):
    post, clf = linear_posterior(spec, sigma=0.1)
    z = np.random.default_rng(0).normal(size=(6, 3))
    ours = post.logdensity(torch.from_numpy(z)).numpy()
    expected = by_hand(z, clf, u_fn, u_star, [0.1] * len(u_star))
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-8)


def test_per_statistic_sigmas_and_annealing_factor():
    post, clf = linear_posterior(trex.targets.Ambiguous(0, 3, sigmas=(0.05, 0.2)))
    z = np.random.default_rng(1).normal(size=(4, 3))
    u_fn = lambda f: np.stack([abs(f[:, 0] - f[:, 3]), np.minimum(f[:, 0], f[:, 3]) - np.maximum(f[:, 1], f[:, 2])], -1)
    np.testing.assert_allclose(post.logdensity(torch.from_numpy(z)).numpy(),
                               by_hand(z, clf, u_fn, [0, .5], [0.05, 0.2]), rtol=1e-10)
    post.sigma_factor = 10.0
    np.testing.assert_allclose(post.logdensity(torch.from_numpy(z)).numpy(),
                               by_hand(z, clf, u_fn, [0, .5], [0.5, 2.0]), rtol=1e-10)


@pytest.mark.parametrize("spec", ["class:1", "ambiguous:0,3", "p:1=0.25,2=0.75", "uniform"])
def test_gradient_matches_finite_differences(spec):
    post, _ = linear_posterior(spec, sigma=0.2)
    z = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    lp, grad = post.logdensity_and_grad(z)
    assert torch.allclose(lp, post.logdensity(z))
    h = 1e-6
    for d in range(3):
        e = torch.zeros_like(z)
        e[:, d] = h
        fd = (post.logdensity(z + e) - post.logdensity(z - e)) / (2 * h)
        assert torch.allclose(grad[:, d], fd, rtol=1e-5, atol=1e-6)


def test_bad_targets_fail_before_sampling():
    with pytest.raises(TargetError, match="class 7 is not among"):
        linear_posterior("class:7")
    with pytest.raises(ValueError, match="sigma must be positive"):
        linear_posterior("class:1", sigma=0.0)


def test_big_batches_split_into_chunks_give_the_same_values():
    post, _ = linear_posterior("ambiguous:1,2")
    assert post.chunk_size == 64  # "auto" on a CPU
    z = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    whole = post.logdensity_and_grad(z)
    post.chunk_size = 3  # 3 + 3 + 1 chains
    parts = post.logdensity_and_grad(z)
    assert torch.allclose(whole[0], parts[0]) and torch.allclose(whole[1], parts[1])
    assert torch.allclose(post.logdensity(z), whole[0])
