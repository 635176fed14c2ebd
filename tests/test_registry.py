"""The dataset registry: a new dataset plugs into the DataModule, the prepare CLI and the zoo CLI
without touching MNIST's or Fashion's code; and the synthetic source digits."""
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules import ImageDataModule, registry
from datamodules.sources import DataUnavailableError, ensure_dataset


def _toy_spec(made: list):
    """12 images of 3 classes, 'fetched' into the data folder by ensure() and read back by load()."""
    def ensure(data_dir: Path):
        f = Path(data_dir) / "Toy" / "toy.npz"
        if not f.is_file():
            f.parent.mkdir(parents=True, exist_ok=True)
            x = np.arange(12 * 16, dtype=np.uint8).reshape(12, 4, 4)
            np.savez(f, x=x, y=np.arange(12) % 3)
            made.append(f)

    def load(data_dir: Path, train: bool):
        with np.load(Path(data_dir) / "Toy" / "toy.npz") as z:
            sl = slice(0, 9) if train else slice(9, 12)
            return z["x"][sl], z["y"][sl]

    return registry.DatasetSpec(name="toy", class_names=("a", "b", "c"), shape=(1, 4, 4), aliases=("toy-set",),
                                ensure=ensure, load=load, location=lambda d: Path(d) / "Toy")


@pytest.fixture
def toy():
    made = []
    registry.register(_toy_spec(made))
    yield made
    registry.unregister("toy")


def test_a_new_dataset_plugs_in(toy, tmp_path, capsys):
    assert "toy" in registry.names() and {"mnist", "fashion", "synthdigits", "svhn"} <= set(registry.names())
    dm = ImageDataModule("toy-set", data_dir=str(tmp_path), exclude=[1], val_size=2, batch_size=4)
    dm.prepare_data()
    dm.setup()
    assert toy and dm.dataset == "toy" and dm.dims == (1, 4, 4) and dm.class_names == ["a", "c"]
    x, y = dm.train_set.tensors
    assert x.shape == (4, 1, 4, 4) and set(y.tolist()) <= {0, 1}  # 6 of 9 training images kept, 2 to validation
    assert torch.equal(dm.to_original(dm.test_set.tensors[1]), torch.tensor([0, 2]))  # labels 9 % 3, 11 % 3
    assert float(dm.test_set.tensors[0].max()) == pytest.approx(191 / 255)  # uint8 / 255: image 11's last pixel
    with pytest.raises(ValueError, match=r"valid labels: 0 \(a\), 1 \(b\), 2 \(c\)"):
        ImageDataModule("toy", include=[3])
    # the prepare CLI and the zoo CLI take it from the registry
    from datamodules.prepare import main as prepare
    assert prepare(["toy", "--data-dir", str(tmp_path), "-q"]) == 0
    assert f"toy: ready in {tmp_path / 'Toy'}" in capsys.readouterr().out
    from lightning_modules import zoo
    zoo.main(["--dataset", "toy", "--list"])
    assert "classifier" in capsys.readouterr().out
    with pytest.raises(ValueError, match="already registered"):
        registry.register(_toy_spec([]))


def test_unknown_dataset_names_the_registered_ones():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; choose one of: .*synthdigits"):
        ImageDataModule("cifar10")


def test_svhn_without_files_or_internet_says_so(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def offline(*a, **k):
        raise OSError("no internet (test)")
    monkeypatch.setattr(tvd, "SVHN", offline)
    with pytest.raises(DataUnavailableError, match="(?s)train_32x32.mat.*no internet.*dataset=synthdigits"):
        ensure_dataset("svhn", tmp_path)


# ----------------------------------------------------------------------------------------- synthdigits
def test_synthdigits_are_deterministic():
    from datamodules import synthdigits as sd
    a, ya = sd.generate(0, "train", 6)
    b, yb = sd.generate(0, "train", 3, start=3)  # any image can be rendered again on its own
    assert a.shape == (6, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a[3:], b) and np.array_equal(ya[3:], yb)
    assert np.array_equal(sd.generate(0, "train", 6)[0], a)
    c, _ = sd.generate(1, "train", 6)
    d, _ = sd.generate(0, "test", 6)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)  # other seed, other split: other images
    rgb, y = sd.generate(0, "train", 2, rgb=True)
    assert rgb.shape == (2, 32, 32, 3) and np.array_equal(sd.to_gray28(rgb), a[:2])


def test_synthdigits_cache_is_written_once(tmp_path):
    from datamodules import synthdigits as sd
    sizes = {"train": 20, "test": 10}
    sd.ensure(tmp_path, sizes=sizes)
    f = sd.cache_file(tmp_path, sizes=sizes)
    stamp = f.stat().st_mtime_ns
    sd.ensure(tmp_path, sizes=sizes)  # found: not rendered again
    assert f.stat().st_mtime_ns == stamp
    x, y = sd.load(tmp_path, False, sizes=sizes)
    assert np.array_equal(x, sd.generate(0, "test", 10)[0]) and y.shape == (10,)


def test_synthdigits_labels_are_the_centre_digit():
    """If the labels were not what the images show (another digit, a shifted index), nothing could learn
    them from the pixels: a small CNN trained on 2,000 rendered digits must read held-out ones far above
    chance (0.1)."""
    from datamodules import synthdigits as sd
    from lightning_modules.components.classifiers import LeNet
    from conftest import fit_quickly
    x, y = sd.generate(7, "train", 2400)
    x = torch.tensor(x).unsqueeze(1).float() / 255
    y = torch.tensor(y)
    torch.manual_seed(0)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = fit_quickly(LeNet(), x[:2000], y[:2000], epochs=6, lr=2e-3, batch=50)
        with torch.no_grad():
            acc = (net(x[2000:]).argmax(-1) == y[2000:]).float().mean().item()
    finally:
        torch.set_num_threads(old)
    assert acc > 0.5, acc
