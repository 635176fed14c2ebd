"""Datasets: a registry of dataset descriptions, their sources (no heavy imports) and the Lightning
DataModule (imported lazily, so that ``python -m datamodules.prepare`` starts fast)."""
from . import registry
from .registry import DatasetSpec, register
from .sources import (CLASS_NAMES, DataDirError, DataUnavailableError, check_writable,
                      ensure_dataset)

__all__ = ["ImageDataModule", "DatasetSpec", "register", "registry", "ensure_dataset", "DataUnavailableError", "CLASS_NAMES",
           "DataDirError", "check_writable"]


def __getattr__(name):
    if name == "ImageDataModule":
        from .image import ImageDataModule
        return ImageDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
