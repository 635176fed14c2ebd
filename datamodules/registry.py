"""Datasets as small registered descriptions, so a new one plugs in without touching the others.

A `DatasetSpec` says what a dataset is (name, aliases, class names, image shape) and how to get
it: `ensure(data_dir)` makes its files present (trying its sources in order, raising
`DataUnavailableError` when none works) and `load(data_dir, train)` returns its images and
labels. `ImageDataModule`, `python -m datamodules.prepare` and the zoo CLI read only this registry.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# Modules that register datasets when imported; imported on the first lookup so that a name can be
# looked up before anyone imported them (the MNIST/Fashion sources register themselves in sources.py).
_PROVIDERS = ("datamodules.sources", "datamodules.synthdigits", "datamodules.svhn")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset.

    ensure(data_dir: Path) -> None       make the files present in data_dir (or raise)
    load(data_dir: Path, train: bool)    -> (images uint8 (N, H, W) or (N, C, H, W), labels int (N,))
    location(data_dir: Path) -> Path     where its files live (for messages)
    """

    name: str
    class_names: tuple[str, ...]
    ensure: Callable[[Path], None]
    load: Callable[[Path, bool], tuple]
    location: Callable[[Path], Path]
    shape: tuple[int, int, int] = (1, 28, 28)
    aliases: tuple[str, ...] = ()
    about: str = ""
    extra: dict = field(default_factory=dict)  # anything a dataset wants to carry (e.g. its generator's seed)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


_REGISTRY: dict[str, DatasetSpec] = {}
_loaded = False


def _load_providers() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib
        for mod in _PROVIDERS:
            importlib.import_module(mod)


def register(spec: DatasetSpec, replace: bool = False) -> DatasetSpec:
    """Add a dataset; a name or alias that is taken is refused unless `replace`."""
    keys = [spec.name, *spec.aliases]
    taken = [k for k in keys if _lookup(k) is not None and _lookup(k).name != spec.name]
    if (spec.name in _REGISTRY or taken) and not replace:
        raise ValueError(f"dataset name {taken[0] if taken else spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _lookup(key: str) -> DatasetSpec | None:
    key = str(key).strip().lower()
    for spec in _REGISTRY.values():
        if key == spec.name or key in spec.aliases:
            return spec
    return None


def get(name: str) -> DatasetSpec:
    _load_providers()
    spec = _lookup(name)
    if spec is None:
        aliases = sorted(a for s in _REGISTRY.values() for a in s.aliases)
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(names())}"
                         + (f" (aliases: {', '.join(aliases)})" if aliases else ""))
    return spec


def names() -> list[str]:
    _load_providers()
    return list(_REGISTRY)


class _ClassNames(Mapping):
    """`CLASS_NAMES[dataset]` as before, read live from the registry (names and aliases)."""

    def __getitem__(self, key):
        _load_providers()
        spec = _lookup(key)
        if spec is None:
            raise KeyError(key)
        return list(spec.class_names)

    def __iter__(self):
        return iter(names())

    def __len__(self):
        return len(names())


CLASS_NAMES = _ClassNames()
