"""Typicality: real held-out images are typical at the calibrated rate; noise and blank images are not."""
import math

import pytest
import torch
import torchvision

from conftest import data_root, fit_quickly
from lightning_modules.components.classifiers import LeNet
from trex.analysis import Typicality


@pytest.fixture(scope="module")
def judge_and_test(mnist_small):
    """A LeNet trained for a few seconds on 5,000 real digits; the bank is those digits, the
    calibration set the first 2,000 test digits, the rest of the test split is held out."""
    x, y = mnist_small
    torch.manual_seed(0)
    net = fit_quickly(LeNet(), x, y, epochs=2, lr=2e-3)
    test = torchvision.datasets.MNIST(data_root(), train=False, download=False).data.unsqueeze(1)
    return Typicality(net, x, test[:2000]), test[2000:6000]


def test_real_held_out_images_are_typical_at_the_calibrated_rate(judge_and_test):
    judge, held_out = judge_and_test
    share = float(judge.typical(held_out).float().mean())
    # binomial spread of the share (4,000 images) and of the 99 % quantile's coverage (2,000), 4 sd
    tol = 4 * math.sqrt(0.99 * 0.01 / 4000 + 0.99 * 0.01 / 2000)
    assert abs(share - 0.99) <= tol, share


@pytest.mark.parametrize("kind", ["uniform noise", "gaussian noise", "blank", "white", "gray"])
def test_noise_and_blank_images_are_not_typical(judge_and_test, kind):
    judge, _ = judge_and_test
    g = torch.Generator().manual_seed(1)
    images = {"uniform noise": lambda: torch.rand(500, 1, 28, 28, generator=g),
              "gaussian noise": lambda: (0.2 + 0.3 * torch.randn(500, 1, 28, 28, generator=g)).clamp(0, 1),
              "blank": lambda: torch.zeros(50, 1, 28, 28), "white": lambda: torch.ones(50, 1, 28, 28),
              "gray": lambda: torch.full((50, 1, 28, 28), 0.3)}[kind]()
    assert judge.typical(images).float().mean() <= 0.10


def test_uint8_and_float_images_score_the_same(judge_and_test):
    judge, held_out = judge_and_test
    x = held_out[:50]
    torch.testing.assert_close(judge.score(x), judge.score(x.float() / 255))
