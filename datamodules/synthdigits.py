"""Synthetic digits, the offline source domain for domain adaptation (SVHN's stand-in; ../shared/DATA.md).

Each image is a 32x32 RGB crop of a "house number" rendered from one of the fonts that ship inside
matplotlib (DejaVu, STIX, Computer Modern): a centre digit (the label) with neighbouring digits cut
by the crop, random font, size, colours, background gradient and clutter, rotation, shear, blur and
noise, the way SynDigits was built (Ganin & Lempitsky 2015). Then, as the ADDA code does for SVHN,
it is converted to grey (ITU-R 601 luma) and resized to 28x28.

Image i of a split is drawn from its own random stream, seeded by (seed, split, i): any image can
be rendered again on its own, and the dataset is the same on every machine. It is generated once
into <data_dir>/SynthDigits/ and read from there afterwards.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from datamodules import registry
from datamodules.sources import DataUnavailableError, check_writable

log = logging.getLogger(__name__)

VERSION = 1  # bump when the recipe changes: the cache file name carries it
FOLDER = "SynthDigits"
SIZES = {"train": 60000, "test": 10000}
SPLIT_CODE = {"train": 0, "test": 1}
RES = 64  # rendered at twice the size, then downsampled to 32 (smoother rotation and blur)
# fonts with proper lining digits (cmmi10 has old-style ones; cmex/cmsy and the STIX size/non-unicode
# fonts have no digits at these code points)
FONT_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
              "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
              "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
              "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
              "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmti10.ttf", "cmtt10.ttf"]


def font_paths() -> list[Path]:
    import matplotlib
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    found = [folder / f for f in FONT_FILES if (folder / f).is_file()]
    if not found:
        raise DataUnavailableError(f"synthdigits: none of matplotlib's fonts were found in {folder}")
    return found


@lru_cache(maxsize=2048)
def _font(path: str, size: int):
    from PIL import ImageFont
    return ImageFont.truetype(path, size)


def _luma(rgb) -> float:
    return float(np.dot(rgb, [0.299, 0.587, 0.114]))


def render(seed: int, split: str, index: int, fonts: list[Path] | None = None) -> tuple[np.ndarray, int]:
    """Image `index` of `split`: (32, 32, 3) uint8 RGB and its label (the centre digit)."""
    from PIL import Image, ImageDraw, ImageFilter

    fonts = fonts or font_paths()
    rng = np.random.default_rng([int(seed), SPLIT_CODE[split], int(index)])
    label = int(rng.integers(10))
    # background: a colour, often a gradient to a second one
    c0 = rng.uniform(0, 255, 3)
    c1 = np.clip(c0 + rng.normal(0, 50, 3), 0, 255) if rng.random() < 0.6 else c0
    t = np.linspace(0, 1, RES)[None, :, None]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * t + np.sin(angle) * t.transpose(1, 0, 2)) / 2 + 0.5
    bg = c0 * (1 - ramp) + c1 * ramp
    # text colour: far enough in brightness from the background to be readable (either polarity)
    bg_l = _luma(bg.reshape(-1, 3).mean(0))
    for _ in range(100):
        fg = rng.uniform(0, 255, 3)
        if abs(_luma(fg) - bg_l) > 70:
            break
    else:
        fg = np.full(3, 0.0 if bg_l > 127 else 255.0)
    # the text layer, three crops wide: the centre digit and maybe a neighbour on each side
    font = _font(str(fonts[int(rng.integers(len(fonts)))]), int(rng.uniform(0.55, 0.95) * RES))
    layer = Image.new("L", (3 * RES, RES))
    draw = ImageDraw.Draw(layer)
    cx, cy = 1.5 * RES + rng.normal(0, 0.03 * RES), 0.5 * RES + rng.normal(0, 0.03 * RES)
    draw.text((cx, cy), str(label), fill=255, font=font, anchor="mm")
    left, _, right, _ = draw.textbbox((cx, cy), str(label), font=font, anchor="mm")
    gap = rng.uniform(0.02, 0.2) * RES
    for side in (-1, 1):
        if rng.random() < 0.6:
            d = str(int(rng.integers(10)))
            l2, _, r2, _ = draw.textbbox((0, 0), d, font=font, anchor="mm")
            x = (left - gap - r2) if side < 0 else (right + gap - l2)
            draw.text((x, cy), d, fill=255, font=font, anchor="mm")
    # rotation and shear about the centre digit, then the crop
    rot = np.deg2rad(rng.uniform(-15, 15))
    shear = rng.uniform(-0.2, 0.2)
    a, b = np.cos(rot), np.sin(rot)
    inv = np.linalg.inv(np.array([[a, -b], [b, a]]) @ np.array([[1, shear], [0, 1]]))
    # output pixel (u, v) of the RES x RES crop reads input pixel inv @ (u - c, v - c) + (cx, cy)
    off = np.array([cx, cy]) - inv @ np.array([RES / 2, RES / 2])
    mask = layer.transform((RES, RES), Image.AFFINE, (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1]),
                           resample=Image.BILINEAR)
    # clutter: a few faint strokes in the text colour (edges, stains, frames in real house numbers)
    clutter = Image.new("L", (RES, RES))
    cd = ImageDraw.Draw(clutter)
    for _ in range(int(rng.integers(0, 4))):
        pts = rng.uniform(0, RES, 4).tolist()
        cd.line(pts, fill=int(rng.uniform(40, 120)), width=int(rng.integers(1, 5)))
    m = np.maximum(np.asarray(mask, np.float64), np.asarray(clutter, np.float64))[..., None] / 255.0
    img = bg * (1 - m) + fg * m
    img = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 2.2))))
    img = np.asarray(img.resize((32, 32), Image.BILINEAR), np.float64)
    img = img + rng.normal(0, rng.uniform(0, 10), img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8), label


def to_gray28(rgb: np.ndarray) -> np.ndarray:
    """(..., 32, 32, 3) uint8 -> (..., 28, 28) uint8: luma (ITU-R 601, as tf.image.rgb_to_grayscale) and a
    bilinear resize, as the ADDA code prepares SVHN for LeNet."""
    from PIL import Image
    flat = rgb.reshape(-1, *rgb.shape[-3:])
    out = np.stack([np.asarray(Image.fromarray(im, "RGB").convert("L").resize((28, 28), Image.BILINEAR))
                    for im in flat])
    return out.reshape(*rgb.shape[:-3], 28, 28)


def generate(seed: int, split: str, n: int, start: int = 0, rgb: bool = False):
    """Images start..start+n-1 of a split: (n, 28, 28) grey (or (n, 32, 32, 3) RGB) uint8 and labels (n,)."""
    fonts = font_paths()
    ims, labels = zip(*(render(seed, split, i, fonts) for i in range(start, start + n)))
    ims = np.stack(ims)
    return (ims if rgb else to_gray28(ims)), np.asarray(labels, dtype=np.int64)


def cache_file(data_dir: Path, seed: int = 0, sizes=None) -> Path:
    sizes = sizes or SIZES
    return Path(data_dir) / FOLDER / f"synthdigits_v{VERSION}_seed{seed}_{sizes['train']}-{sizes['test']}.npz"


def ensure(data_dir: Path, seed: int = 0, sizes=None) -> None:
    """Generate the dataset into data_dir once (about 2 minutes on one core); later calls find the file."""
    sizes = sizes or SIZES
    f = cache_file(data_dir, seed, sizes)
    if f.is_file():
        return
    check_writable(data_dir)
    f.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    arrays = {}
    for split, n in sizes.items():
        log.info("synthdigits: rendering %d %s images (seed %d) ...", n, split, seed)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = generate(seed, split, n)
    fd, tmp = tempfile.mkstemp(prefix=".synthdigits-", suffix=".npz", dir=f.parent)
    os.close(fd)
    np.savez(tmp, **arrays)
    os.replace(tmp, f)  # atomic: a half-written cache is never read
    (f.with_suffix(".json")).write_text(json.dumps({
        "version": VERSION, "seed": seed, "sizes": sizes, "fonts": FONT_FILES,
        "label_counts": {s: np.bincount(arrays[f"y_{s}"], minlength=10).tolist() for s in sizes},
        "seconds": round(time.time() - start, 1)}, indent=1))
    log.info("synthdigits: wrote %s in %.0f s", f, time.time() - start)


def load(data_dir: Path, train: bool, seed: int = 0, sizes=None):
    with np.load(cache_file(data_dir, seed, sizes)) as z:
        split = "train" if train else "test"
        return z[f"x_{split}"], z[f"y_{split}"]


registry.register(registry.DatasetSpec(
    name="synthdigits", class_names=tuple(str(i) for i in range(10)), shape=(1, 28, 28),
    aliases=("syndigits", "synth_digits", "synth-digits"),
    ensure=ensure, load=load, location=lambda d: Path(d) / FOLDER,
    about="synthetic house-number digits rendered from matplotlib's fonts, 32x32 RGB -> 28x28 grey"), replace=True)


def grid(path, n: int = 64, seed: int = 0) -> None:
    """The first n training images, 32x32 RGB as rendered (left) and 28x28 grey as LeNet reads them
    (right), with their labels printed row by row."""
    import torch
    from torchvision.utils import make_grid, save_image
    rgb, y = generate(seed, "train", n, rgb=True)
    nrow = int(round(n ** 0.5))
    left = make_grid(torch.tensor(rgb).permute(0, 3, 1, 2).float() / 255, nrow=nrow, pad_value=1)
    grey = torch.nn.functional.pad(torch.tensor(to_gray28(rgb)).float().unsqueeze(1) / 255, (2, 2, 2, 2), value=0)
    right = make_grid(grey.expand(-1, 3, -1, -1), nrow=nrow, pad_value=1)
    gap = torch.ones(3, left.shape[1], 8)
    save_image(torch.cat([left, gap, right], 2), path)
    print("labels, row by row:\n" + "\n".join(" ".join(map(str, y[i:i + nrow])) for i in range(0, n, nrow)))


if __name__ == "__main__":  # python -m datamodules.synthdigits docs/img/synthdigits.png
    import sys
    grid(sys.argv[1] if len(sys.argv) > 1 else "synthdigits.png")
