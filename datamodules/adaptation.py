"""Two registered datasets for domain adaptation: a labeled source and an unlabeled target (ADDA).

mode="source": the source's labeled training images (the LeNet baseline).
mode="adda":   pairs of batches {"source": (x, y), "target": (x,)}; the target's labels are dropped
               here, so an adapting model cannot read them.
Validation has two loaders: [source val, target test]; the target test accuracy is logged every
epoch (as the ADDA paper reports it) but never chooses a checkpoint. Test: [source test, target test].
"""
from __future__ import annotations

from typing import Optional

import pytorch_lightning as pl
from torch.utils.data import DataLoader, TensorDataset

from .image import ImageDataModule

MODES = ("source", "adda")


class AdaptationDataModule(pl.LightningDataModule):
    def __init__(self, source: str = "synthdigits", target: str = "mnist", data_dir: str = "data",
                 mode: str = "source", val_size: int = 5000, split_seed: int = 0, batch_size: int = 128,
                 num_workers: int = 0, subset_train: Optional[int] = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.save_hyperparameters()
        kw = dict(data_dir=data_dir, val_size=val_size, split_seed=split_seed, batch_size=batch_size,
                  num_workers=num_workers, subset_train=subset_train)
        self.src, self.tgt = ImageDataModule(source, **kw), ImageDataModule(target, **kw)
        if self.src.spec.class_names != self.tgt.spec.class_names or self.src.dims != self.tgt.dims:
            raise ValueError(f"{source} and {target} must share classes and image shape to adapt one to the other")
        self.mode, self.batch_size, self.num_workers = mode, batch_size, num_workers

    # what train.py records in a classifier: its labels come from the source
    @property
    def dataset(self) -> str:
        return self.src.dataset

    @property
    def target_dataset(self) -> str:
        return self.tgt.dataset

    @property
    def classes(self) -> list[int]:
        return self.src.classes

    @property
    def dims(self):
        return self.src.dims

    def prepare_data(self) -> None:
        self.src.prepare_data()
        self.tgt.prepare_data()

    def setup(self, stage: Optional[str] = None) -> None:
        self.src.setup(stage)
        self.tgt.setup(stage)

    def _loader(self, ds, shuffle=False):
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          drop_last=shuffle, persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        source = self._loader(self.src.train_set, shuffle=True)
        if self.mode == "source":
            return source
        from pytorch_lightning.utilities import CombinedLoader
        target = self._loader(TensorDataset(self.tgt.train_set.tensors[0]), shuffle=True)  # images only
        return CombinedLoader({"source": source, "target": target}, mode="max_size_cycle")

    def val_dataloader(self):
        return [self._loader(self.src.val_set), self._loader(self.tgt.test_set)]

    def test_dataloader(self):
        return [self._loader(self.src.test_set), self._loader(self.tgt.test_set)]
