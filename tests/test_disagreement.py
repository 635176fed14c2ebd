"""The disagreement target over two stacked classifiers, against a posterior known in closed form."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import trex
from trex.resume import weights_hash
from trex.targets import Disagreement, TargetError, parse

pytestmark = pytest.mark.usefixtures("one_thread")
K = 3.0  # logit slope of the hand-made classifiers


class Identity(nn.Module):
    """x = z as a (1, 1, 2) 'image'."""
    latent_dim = 2

    def forward(self, z):
        return z.reshape(-1, 1, 1, 2)


class OnAxis(nn.Module):
    """Two classes read off one coordinate: logits (K x_d, -K x_d), so p(class 0) = sigmoid(2 K x_d)."""
    num_classes = 2

    def __init__(self, d: int, slope: float = K):
        super().__init__()
        self.d = d
        self.slope = nn.Parameter(torch.tensor(slope))  # a weight, so the runs' hash sees it

    def forward(self, x):
        v = x.flatten(1)[:, self.d]
        return torch.stack([self.slope * v, -self.slope * v], -1)


def _marginal(sign: float, sigma: float):
    """The exact posterior of one coordinate: N(t; 0, 1) N(1; sigmoid(sign 2K t), σ²), on a fine grid."""
    t = np.linspace(-6, 6, 24001)
    p = 1 / (1 + np.exp(-sign * 2 * K * t))
    w = np.exp(-0.5 * t ** 2 - 0.5 * ((1 - p) / sigma) ** 2)
    w /= w.sum()
    return t, p, w


def test_known_answer_on_two_hand_made_classifiers():
    a, b = OnAxis(0), OnAxis(1)  # A says 0 when z0 > 0; B says 1 when z1 < 0
    both = trex.Stacked(a, b)
    post = trex.RelaxedPosterior(trex.LatentGaussian(Identity()), both, "disagree:0,1", sigma=0.1,
                                 output="probs", classes=both.classes)
    run = trex.sample(post, trex.samplers.HMC(), num_chains=16, num_warmup=200, num_samples=200, seed=0,
                      store_images=False, progress=False)
    z = run.flat("latents")
    pa, pb = both.halves(torch.as_tensor(run.flat("probs")))
    # the posterior factorises over z0 (model A) and z1 (model B): each marginal is known on a grid
    t, p0, w0 = _marginal(+1, 0.1)
    _, p1, w1 = _marginal(-1, 0.1)
    mean0, mean1 = float((t * w0).sum()), float((t * w1).sum())
    sd0 = math.sqrt(float(((t - mean0) ** 2 * w0).sum()))
    ess = max(run.diagnostics["ess_bulk_min"], 50.0)
    tol = 5 * sd0 / math.sqrt(ess)  # 5 Monte Carlo standard errors
    assert abs(z[:, 0].mean() - mean0) < tol and abs(z[:, 1].mean() - mean1) < tol
    assert mean0 > 0.3 and mean1 < -0.3  # the known answer is far from the prior's mean 0
    # share of draws where both are >= 0.9 confident in their (different) classes, against the exact one
    exact = float(w0[p0 >= 0.9].sum() * w1[p1 >= 0.9].sum())
    got = float(((pa[:, 0] >= 0.9) & (pb[:, 1] >= 0.9)).float().mean())
    assert abs(got - exact) < 0.1, (got, exact)
    assert np.allclose(run.ideal, [1, 0, 0, 1])
    d = post.target.distance(torch.as_tensor(run.flat("probs")))
    assert torch.allclose(d, torch.maximum(1 - pa[:, 0], 1 - pb[:, 1]))


def test_no_region_when_both_models_are_one():
    """The same classifier twice can never be confident in 0 and in 1 at once: p0 + p1 = 1, so the
    target's distance is at least 0.5 everywhere."""
    a = OnAxis(0)
    both = trex.Stacked(a, a)
    target = parse("disagree:0,1").bind(both.classes)
    z = torch.linspace(-8, 8, 2001)
    grid = torch.stack([z, torch.zeros_like(z)], -1)
    with torch.no_grad():
        assert float(target.distance(both(Identity()(grid))).min()) >= 0.5 - 1e-6


def test_binding_and_hashes():
    both = trex.Stacked(OnAxis(0), OnAxis(1))
    assert both.classes == [0, 1, 0, 1]
    with pytest.raises(TargetError, match="same class"):
        Disagreement(1, 1)
    with pytest.raises(TargetError, match="stacked"):
        Disagreement(0, 1).bind([0, 1, 2])  # one classifier's classes
    with pytest.raises(TargetError, match="class 5 is not among model B"):
        Disagreement(0, 5).bind(both.classes)
    # a run's signature hashes every model: changing model B alone changes it
    other = trex.Stacked(OnAxis(0), OnAxis(1, slope=2.0))
    assert weights_hash(both) != weights_hash(other)
    assert weights_hash(both) == weights_hash(trex.Stacked(OnAxis(0), OnAxis(1)))
