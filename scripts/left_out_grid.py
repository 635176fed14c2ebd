"""What the full-data classifier calls the left-out class: a leave-one-class-out generator's samples
that land in the class it never saw, beside real held-out images of its training classes that land
there too (the classifier's own mistakes, the "real floor").

    python scripts/left_out_grid.py zoo/quick/fashion gan_without_0 --out docs/img/fashion_left_out_0.png
"""
import argparse
import json
from pathlib import Path

import torch
from torchvision.utils import save_image

from datamodules import ImageDataModule
from lightning_modules.classifier import load_classifier
from lightning_modules.evaluate import predict
from lightning_modules.fid import generate
from lightning_modules.loading import load_generator


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("zoo_folder", help="e.g. zoo/quick/fashion (holds classifier.ckpt and index.json)")
    ap.add_argument("name", help="a leave-one-class-out generator, e.g. gan_without_0")
    ap.add_argument("--n", type=int, default=10_000, help="samples to draw (seed 1, as the zoo's report)")
    ap.add_argument("--show", type=int, default=48, help="images per half of the grid")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    folder = Path(a.zoo_folder)
    entry = json.loads((folder / "index.json").read_text())["models"][a.name]
    left_out = entry["data"].get("exclude") or []
    if len(left_out) != 1:
        raise SystemExit(f"{a.name} leaves out {left_out or 'nothing'}; this picture is for one left-out class")
    c = left_out[0]
    classifier, classes = load_classifier(folder / "classifier.ckpt")
    fake = generate(load_generator(folder / f"{a.name}.ckpt"), a.n, seed=1)
    fake_hits = fake[predict(classifier, fake) == classes.index(c)]
    dm = ImageDataModule(entry["dataset"], a.data_dir, exclude=[c])
    dm.setup("test")
    real = dm.test_set.tensors[0]
    real_hits = real[predict(classifier, real) == classes.index(c)]
    k = min(a.show, len(fake_hits), len(real_hits))
    k = k - k % 8 or k  # whole rows of 8, so the blank row separates the halves
    print(f"{a.name}: {len(fake_hits)} of {len(fake)} samples ({100 * len(fake_hits) / len(fake):.2f} %) and "
          f"{len(real_hits)} of {len(real)} real images ({100 * len(real_hits) / len(real):.2f} %) called class {c}; "
          f"top: samples, bottom: real, {k} each")
    blank = torch.ones(8, *fake.shape[1:])  # a white row between the halves
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat([fake_hits[:k], blank, real_hits[:k]]), a.out, nrow=8, padding=2)


if __name__ == "__main__":
    main()
