"""SmoothGrad on models whose maps are known in closed form: linear (the map is |w_c| exactly, noise
or not) and quadratic (the map is the folded-normal mean E|x + eps|, to Monte Carlo error)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from trex.analysis.saliency import saliency_figure, smoothgrad

pytestmark = pytest.mark.usefixtures("one_thread")


class Linear(nn.Module):
    """logit_k = <W_k, x> on (N, 1, H, W) images."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)  # (K, 1, H, W)
        self.num_classes = len(w)

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x, self.w)


def test_a_linear_classifier_gets_the_absolute_weights_of_each_images_own_class():
    torch.manual_seed(0)
    w = torch.randn(3, 1, 6, 5)
    model = Linear(w)
    x = torch.rand(5, 1, 6, 5)
    targets = [2, 0, 1, 2, 0]
    maps = smoothgrad(model, x, targets, stdev=0.3, n_samples=7)
    assert maps.shape == (5, 1, 6, 5) and maps.dtype == np.float32
    for n, c in enumerate(targets):  # the gradient of a linear model does not depend on x, so noise changes nothing
        np.testing.assert_allclose(maps[n], w[c].abs().numpy(), rtol=1e-6)
    # one int for every image, and no absolute value: the signed weights
    np.testing.assert_allclose(smoothgrad(model, x, 1, absolute=False), w[1].expand(5, -1, -1, -1).numpy(), rtol=1e-6)
    # uint8 images are read as pixel / 255; the map of a linear model is the same
    np.testing.assert_allclose(smoothgrad(model, (x * 255).to(torch.uint8), targets)[0], w[2].abs().numpy(), rtol=1e-6)


def test_batches_and_the_probability_output_agree_with_the_plain_gradient():
    torch.manual_seed(1)
    model = Linear(torch.randn(4, 1, 3, 3))
    x = torch.rand(7, 1, 3, 3)
    targets = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    np.testing.assert_allclose(smoothgrad(model, x, targets, batch_size=3), smoothgrad(model, x, targets), rtol=1e-6)
    # softmax output with (almost) no noise: d p_c / dx = p_c (w_c - sum_k p_k w_k)
    maps = smoothgrad(model, x, targets, stdev=1e-7, n_samples=2, output="prob", absolute=False)
    p = model(x).softmax(-1).detach()
    w = model.w.detach()
    for n, c in enumerate(targets.tolist()):
        expected = p[n, c] * (w[c] - torch.einsum("k,kchw->chw", p[n], w))
        np.testing.assert_allclose(maps[n], expected.numpy(), rtol=1e-4, atol=1e-7)


def test_the_noise_has_the_stated_stdev_the_seed_fixes_it_and_the_global_rng_is_untouched():
    class Quadratic(nn.Module):  # logit_0 = |x|^2 / 2, so the gradient is x itself
        num_classes = 1

        def forward(self, x):
            return 0.5 * (x ** 2).flatten(1).sum(1, keepdim=True)

    mu = torch.linspace(-1.0, 1.0, 50).reshape(1, 1, 5, 10)
    sigma, n = 0.5, 4000
    state = torch.random.get_rng_state()
    maps = smoothgrad(Quadratic(), mu, 0, stdev=sigma, n_samples=n, seed=3)[0, 0]
    assert torch.equal(torch.random.get_rng_state(), state)
    # SmoothGrad of |x + eps|: the folded-normal mean, per pixel, within 4 Monte Carlo standard errors
    m = mu[0, 0].double().numpy()
    phi = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))
    mean = sigma * math.sqrt(2 / math.pi) * np.exp(-m ** 2 / (2 * sigma ** 2)) + m * (1 - 2 * phi(-m / sigma))
    se = np.sqrt((m ** 2 + sigma ** 2 - mean ** 2) / n)
    assert np.all(np.abs(maps - mean) < 4 * se)
    assert np.abs(maps - np.abs(m)).max() > 10 * se.max()  # and it is not the noise-free |x|
    again = smoothgrad(Quadratic(), mu, 0, stdev=sigma, n_samples=n, seed=3)[0, 0]
    np.testing.assert_array_equal(maps, again)
    assert not np.array_equal(maps, smoothgrad(Quadratic(), mu, 0, stdev=sigma, n_samples=n, seed=4)[0, 0])


def test_bad_targets_and_shapes_fail_clearly_and_the_mode_is_restored():
    model = Linear(torch.randn(3, 1, 4, 4)).train()
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="output indices in 0..2"):
        smoothgrad(model, x, [0, 3])
    with pytest.raises(ValueError, match="one class per image"):
        smoothgrad(model, x, [0, 1, 2])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        smoothgrad(model, x[0], 0)
    with pytest.raises(ValueError, match="output must be"):
        smoothgrad(model, x, 0, output="softmax")
    smoothgrad(model, x, [0, 1])
    assert model.training


def test_figure_puts_each_image_beside_its_map(tmp_path):
    torch.manual_seed(0)
    w = torch.zeros(2, 1, 8, 8)
    w[0, 0, :4] = 1.0  # class 0 looks at the top half, class 1 at the left column
    w[1, 0, :, 0] = -2.0
    x = torch.rand(3, 1, 8, 8)
    maps = smoothgrad(Linear(w), x, [0, 1, 0])
    fig = saliency_figure(x.numpy(), maps, titles=["a", "b", "c"], per_row=2, title="smoothgrad")
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 6 and [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")] == ["a", "b", "c"]
    np.testing.assert_allclose(images[0], x[0, 0].numpy())
    np.testing.assert_allclose(images[1], (w[0, 0] != 0).float().numpy())  # each map scaled to its own maximum
    np.testing.assert_allclose(images[3], (w[1, 0] != 0).float().numpy())
    fig.savefig(tmp_path / "saliency.png", dpi=60)
    with pytest.raises(ValueError, match="3 images but 2"):
        saliency_figure(x.numpy(), maps[:2])
