"""Rendered scenes with counting questions: scenes drawn from the scene prior, rendered once and
cached under <data_dir>/scenes/ (a file per split, named by everything that defines it), so a
second run, or another model, reads the same pictures. Answers are exact from the scene graphs.

Training batches carry (images uint8, scenes); the module asks fresh random questions of every
batch. Validation and test batches also carry fixed questions and their answers, so held-out
accuracy is measured on the same questions every time.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from trex.errors import UserError
from trex.scenes import ScenePrior
from trex.scenes.questions import answer, random_questions


class SceneQADataModule(pl.LightningDataModule):
    def __init__(self, data_dir: str = "data", num_train: int = 20000, num_val: int = 1000, num_test: int = 2000,
                 num_objects=(3, 6), shapes=("cube", "sphere", "cylinder"), image_size: int = 128,
                 questions_per_scene: int = 8, batch_size: int = 64, seed: int = 0, num_workers: int = 0,
                 dataset: str = "scenes"):
        super().__init__()
        for name, v in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if not isinstance(v, int) or v < 1:
                raise UserError(f"{name} must be a whole number >= 1, got {v!r}")
        self.data_dir = Path(data_dir) / "scenes"
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.num_objects, self.shapes, self.image_size = list(num_objects), list(shapes), int(image_size)
        self.questions_per_scene, self.batch_size, self.seed = questions_per_scene, batch_size, seed
        self.num_workers, self.dataset = num_workers, dataset
        self.classes = list(range(11))
        self.data = {}

    def prior(self) -> ScenePrior:
        from trex.scenes.render import Renderer
        return ScenePrior(num_objects=tuple(self.num_objects), shapes=tuple(self.shapes),
                          renderer=Renderer(size=self.image_size))

    def path(self, split: str) -> Path:
        spec = {"split": split, "n": self.sizes[split], "objects": self.num_objects, "shapes": self.shapes,
                "size": self.image_size, "q": self.questions_per_scene, "seed": self.seed, "version": 1}
        tag = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
        return self.data_dir / f"{split}-{self.sizes[split]}-{tag}.pt"

    def prepare_data(self):
        for split, seed in (("train", 0), ("val", 1), ("test", 2)):
            path = self.path(split)
            if not path.exists():
                self.data_dir.mkdir(parents=True, exist_ok=True)
                torch.save(self.render_split(split, 1000 * self.seed + seed), path)

    def render_split(self, split: str, seed: int) -> dict:
        gen = torch.Generator().manual_seed(seed)
        prior = self.prior()
        scenes = prior.sample_prior(self.sizes[split], gen)
        images = torch.cat([(prior.decode(c) * 255).round().to(torch.uint8) for c in scenes.split(256)])
        out = {"scenes": scenes, "images": images}
        if split != "train":
            q = random_questions(scenes, self.questions_per_scene, gen)
            out["questions"] = q
            out["answers"] = torch.stack([answer(scenes, q[:, k]) for k in range(q.shape[1])], 1)
        return out

    def setup(self, stage=None):
        for split in ("train", "val", "test"):
            if split not in self.data:
                d = torch.load(self.path(split), weights_only=True)
                keys = ("images", "scenes") + (("questions", "answers") if split != "train" else ())
                self.data[split] = TensorDataset(*(d[k] for k in keys))

    def _loader(self, split, shuffle):
        return DataLoader(self.data[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, drop_last=shuffle)

    def train_dataloader(self):
        return self._loader("train", True)

    def val_dataloader(self):
        return self._loader("val", False)

    def test_dataloader(self):
        return self._loader("test", False)
