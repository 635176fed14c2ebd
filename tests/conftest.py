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
    return PCADecoder(x).eval(), fit_quickly(TinyClassifier(), x, y, epochs=3, lr=3e-3)


def fit_quickly(net, x, y, epochs: int, lr: float, batch: int = 100):
    """A few epochs of Adam with cross-entropy, for tests that need a trained network in seconds."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            loss = nn.functional.cross_entropy(net(x[i:i + batch]), y[i:i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def one_thread():
    """torch on one intra-op thread for a test module (`pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def compose_cfg(config, overrides, out):
    """A train or sample config composed as Hydra would, writing to `out`, reading the prepared data."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict
    import lightning_modules.cli  # noqa: F401  (registers the run_name resolver sample.yaml uses)
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "configs")):
        cfg = compose(config, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.paths.data_dir = str(data_root())
    return cfg


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """Tiny real checkpoints trained by train.py in seconds: classifier, VAE, and the LeNet typicality judge."""
    import train as train_entry
    root = tmp_path_factory.mktemp("ckpts")
    common = ["logger=csv", "trainer.max_epochs=1", "data.subset_train=3000", "callbacks.progress_bar=false",
              "trainer.accelerator=cpu", "trainer.limit_val_batches=4", "trainer.limit_test_batches=4", "fid=false"]
    clf = train_entry.train(compose_cfg("train", ["experiment=mnist/classifier", *common], root / "clf"))
    vae = train_entry.train(compose_cfg("train", ["experiment=mnist/vae", *common], root / "vae"))
    lenet = train_entry.train(compose_cfg("train", ["experiment=mnist/lenet", *common], root / "lenet"))
    return clf["best_checkpoint"], vae["last_checkpoint"], lenet["best_checkpoint"]
