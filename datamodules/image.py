"""LightningDataModule for any registered image dataset (datamodules.registry) as in-memory tensors in [0, 1]."""
from __future__ import annotations

from typing import Optional, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from . import registry
from .sources import ensure_dataset


class ImageDataModule(pl.LightningDataModule):
    """Images of a registered dataset, float in [0, 1] of shape (N, *dims) (MNIST, Fashion and the
    synthetic digits: (N, 1, 28, 28)), no mean/std normalisation.

    ``include``/``exclude`` select original labels; kept labels are remapped to 0..K-1 in
    sorted order (``classes[k]`` is the original label of class ``k``)."""

    def __init__(self, dataset: str = "mnist", data_dir: str = "data",
                 include: Optional[Sequence[int]] = None, exclude: Optional[Sequence[int]] = None,
                 val_size: int = 5000, split_seed: int = 0, batch_size: int = 128,
                 num_workers: int = 0, pin_memory: bool = False,
                 subset_train: Optional[int] = None):
        super().__init__()
        self.dataset = registry.get(dataset).name
        self.dims = tuple(self.spec.shape)
        self.data_dir = str(data_dir)
        names = self.spec.class_names
        valid = list(range(len(names)))

        def check(labels, what):
            if labels is None:
                return None
            labels = [int(c) for c in labels]
            bad = [c for c in labels if c not in valid]
            if bad:
                raise ValueError(f"{what}: unknown label(s) {bad} for {self.dataset}; valid labels: "
                                 + ", ".join(f"{c} ({n})" for c, n in
                                             zip(valid, names)))
            return labels

        inc, exc = check(include, "include"), check(exclude, "exclude")
        if inc is not None and exc is not None and set(inc) & set(exc):
            raise ValueError(f"labels {sorted(set(inc) & set(exc))} are both included and excluded")
        kept = set(valid if inc is None else inc) - set(exc or [])
        if not kept:
            raise ValueError(f"include={include} / exclude={exclude} leave no class of {self.dataset}")
        if int(val_size) < 0:
            raise ValueError(f"val_size must be >= 0, got {val_size}")
        self._classes = sorted(kept)
        self.val_size, self.split_seed = int(val_size), int(split_seed)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.subset_train = subset_train
        # original label -> new index (-1: dropped)
        self.label_map = torch.full((len(valid),), -1, dtype=torch.long)
        self.label_map[self._classes] = torch.arange(len(self._classes))
        self.save_hyperparameters()
        self.train_set = self.val_set = self.test_set = None

    @property
    def spec(self) -> registry.DatasetSpec:
        return registry.get(self.dataset)  # looked up, not kept: the spec holds functions (pickling)

    @property
    def classes(self) -> list[int]:
        return list(self._classes)

    @property
    def num_classes(self) -> int:
        return len(self._classes)

    @property
    def class_names(self) -> list[str]:
        return [self.spec.class_names[c] for c in self._classes]

    def to_original(self, idx) -> torch.Tensor:
        """Map remapped class indices (tensor/list/int) back to original labels."""
        return torch.as_tensor(self._classes)[torch.as_tensor(idx, dtype=torch.long)]

    def prepare_data(self) -> None:
        # ensure_dataset returns at once when the data is there (even in a read-only folder);
        # otherwise it calls check_writable(data_dir) before trying any source.
        ensure_dataset(self.dataset, self.data_dir)

    def _load(self, train: bool):
        from pathlib import Path

        images, labels = self.spec.load(Path(self.data_dir), train)
        images, labels = torch.as_tensor(images), torch.as_tensor(labels)
        y = self.label_map[labels.long()]
        keep = y >= 0
        x = images[keep]
        x = (x.unsqueeze(1) if x.dim() == 3 else x).float().div_(255.0)  # uint8 (N, H, W) or (N, C, H, W)
        return x, y[keep]

    def setup(self, stage: Optional[str] = None) -> None:
        if self.train_set is not None:
            return
        x, y = self._load(train=True)
        if self.val_size >= len(y):
            raise ValueError(f"val_size={self.val_size} leaves no training data "
                             f"({len(y)} training images for classes {self._classes})")
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx = perm[:self.val_size].sort().values
        train_idx = perm[self.val_size:].sort().values
        if self.subset_train is not None:
            train_idx = train_idx[:int(self.subset_train)]
        self.train_set = TensorDataset(x[train_idx], y[train_idx])
        self.val_set = TensorDataset(x[val_idx], y[val_idx])
        self.test_set = TensorDataset(*self._load(train=False))

    def _loader(self, ds, shuffle: bool) -> DataLoader:
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
