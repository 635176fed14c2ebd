"""Take the bare generator out of a VAE or GAN Lightning checkpoint (for `sample.py` / `trex`)."""
import importlib
from pathlib import Path
from typing import Union

import torch
from torch import nn

from lightning_modules.gan import GANModule
from lightning_modules.vae import VAEModule

_BY_NAME = {"VAEModule": VAEModule, "GANModule": GANModule}


def _module_class(ckpt: dict):
    name = ckpt.get("module_class")  # written by the modules' on_save_checkpoint
    if name:
        mod, _, cls = name.rpartition(".")
        try:
            return getattr(importlib.import_module(mod), cls)
        except (ImportError, AttributeError):
            if cls in _BY_NAME:
                return _BY_NAME[cls]
            raise
    # older checkpoints: tell the two apart by their hyperparameters
    hp = ckpt.get("hyper_parameters", {})
    if "width" in hp:
        return GANModule
    if "hidden" in hp:
        return VAEModule
    raise ValueError("checkpoint names no generator module (expected a VAEModule or GANModule checkpoint)")


def load_generator(path: Union[str, Path], map_location="cpu") -> nn.Module:
    """Decoder/generator from a checkpoint: z (B, latent_dim) -> images (B, 1, 28, 28) in [0, 1],
    eval mode, parameters frozen, `.latent_dim` set."""
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    cls = _module_class(ckpt)
    module = cls.load_from_checkpoint(path, map_location=map_location)
    return module.generator()
