"""Datasets: sources (no heavy imports) and the Lightning DataModule (imported lazily,
so that ``python -m datamodules.prepare`` starts fast)."""
from .sources import (CLASS_NAMES, DataDirError, DataUnavailableError, check_writable,
                      ensure_dataset)

__all__ = ["ImageDataModule", "ensure_dataset", "DataUnavailableError", "CLASS_NAMES",
           "DataDirError", "check_writable"]


def __getattr__(name):
    if name == "ImageDataModule":
        from .image import ImageDataModule
        return ImageDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
