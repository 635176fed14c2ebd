"""Shared fixtures: the prepared data folder, W&B offline, and tiny real models for end-to-end tests."""
import os
from pathlib import Path

import pytest
import torch
from torch import nn

os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")
REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    d = Path(os.environ.get("DATA_DIR", "data"))
    return d if d.is_absolute() else REPO / d


class PCADecoder(nn.Module):
    """A linear data distribution fitted to real digits: x = clamp(mean + V s z), 5 latent dims."""

    def __init__(self, images: torch.Tensor, latent_dim: int = 5):
        super().__init__()
        flat = images.reshape(len(images), -1)
        mean = flat.mean(0)
        _, s, v = torch.linalg.svd(flat - mean, full_matrices=False)
        scale = s[:latent_dim] / (len(flat) - 1) ** 0.5
        self.register_buffer("mean", mean)
        self.register_buffer("basis", v[:latent_dim] * scale[:, None])
        self.latent_dim = latent_dim
        self.shape = images.shape[1:]

    def forward(self, z):
        return (self.mean + z @ self.basis).clamp(0, 1).reshape(-1, *self.shape)


class TinyClassifier(nn.Module):
    def __init__(self, k=10):
        super().__init__()
        self.num_classes = k
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, k))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="session")
def mnist_small():
    """5,000 real MNIST training digits as float [0, 1] tensors."""
    import torchvision
    from datamodules import ensure_dataset
    root = ensure_dataset("mnist", data_root())
    ds = torchvision.datasets.MNIST(root, train=True, download=False)
    x = ds.data[:5000].float().div(255).unsqueeze(1)
    return x, ds.targets[:5000].clone()


@pytest.fixture(scope="session")
def tiny_models(mnist_small):
    """A PCA decoder and a small MLP classifier trained for a few seconds on real digits."""
    x, y = mnist_small
    torch.manual_seed(0)
    clf = TinyClassifier()
    opt = torch.optim.Adam(clf.parameters(), lr=3e-3)
    for _ in range(3):
        for i in range(0, len(x), 100):
            loss = nn.functional.cross_entropy(clf(x[i:i + 100]), y[i:i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return PCADecoder(x).eval(), clf.eval()


@pytest.fixture(scope="module")
def one_thread():
    """torch on one intra-op thread for a test module (`pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
