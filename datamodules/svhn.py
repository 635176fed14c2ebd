"""SVHN (the paper's source domain), through torchvision: the files already in <data_dir>/SVHN/, or
torchvision's download where the internet is reachable. Converted to 28x28 grey as the ADDA code does
(see datamodules.synthdigits.to_gray28). Offline, `synthdigits` stands in for it."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np

from datamodules import registry
from datamodules.sources import DOWNLOAD_TIMEOUT_S, DataUnavailableError

FILES = {True: "train_32x32.mat", False: "test_32x32.mat"}


def _location(data_dir: Path) -> Path:
    return Path(data_dir) / "SVHN"


def ensure(data_dir: Path) -> None:
    folder = _location(data_dir)
    if all((folder / f).is_file() for f in FILES.values()):
        return
    import torchvision.datasets as tvd
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        for split in ("train", "test"):
            tvd.SVHN(str(folder), split=split, download=True)
    except Exception as e:  # noqa: BLE001 - one message for every way a download fails
        raise DataUnavailableError(
            f"svhn: no source could provide the dataset. Tried:\n  1. already present in {folder}: missing "
            f"{', '.join(f for f in FILES.values() if not (folder / f).is_file())}\n     to fix: copy "
            f"train_32x32.mat and test_32x32.mat there\n  2. torchvision download: {type(e).__name__}: "
            f"{str(e)[:200]}\n     to fix: connect this machine to the internet, or use the offline stand-in "
            f"dataset=synthdigits") from None
    finally:
        socket.setdefaulttimeout(old)


def load(data_dir: Path, train: bool):
    import torchvision.datasets as tvd
    from datamodules.synthdigits import to_gray28
    ds = tvd.SVHN(str(_location(data_dir)), split="train" if train else "test", download=False)
    rgb = np.ascontiguousarray(ds.data.transpose(0, 2, 3, 1))  # (N, 3, 32, 32) -> (N, 32, 32, 3)
    return to_gray28(rgb), np.asarray(ds.labels, dtype=np.int64) % 10  # torchvision already maps '10' to 0


registry.register(registry.DatasetSpec(
    name="svhn", class_names=tuple(str(i) for i in range(10)), shape=(1, 28, 28), ensure=ensure, load=load,
    location=_location, about="Street View House Numbers, 32x32 RGB -> 28x28 grey"), replace=True)
