"""Take the bare generator out of a VAE or GAN Lightning checkpoint (for `sample.py` / `trex`)."""
from pathlib import Path
from typing import Union

from torch import nn

from trex.safeload import CheckpointError, read
from lightning_modules.gan import GANModule
from lightning_modules.vae import VAEModule

# The only classes a checkpoint may name: a name is looked up here, never imported.
_BY_NAME = {"VAEModule": VAEModule, "GANModule": GANModule}


def generator_class(ckpt: dict, path):
    name = ckpt.get("module_class")  # written by the modules' on_save_checkpoint
    if name:
        cls = name.rpartition(".")[2]
        if cls in _BY_NAME:
            return _BY_NAME[cls]
        raise CheckpointError(f"{path} is a {cls} checkpoint, not a generator (expected a VAE or GAN "
                              f"checkpoint; a classifier goes in classifier=...)")
    # older checkpoints: tell the two apart by their hyperparameters
    hp = ckpt.get("hyper_parameters", {})
    if "width" in hp:
        return GANModule
    if "hidden" in hp:
        return VAEModule
    kind = " (it looks like a classifier: pass it as classifier=...)" if "classes" in hp else ""
    raise CheckpointError(f"{path} is not a generator checkpoint (expected a VAE or GAN checkpoint){kind}")


def generator_info(ckpt: dict) -> dict:
    """What a generator checkpoint says about itself without building it: its dataset and classes."""
    data = ckpt.get("datamodule_hyper_parameters") or {}
    return {"dataset": data.get("dataset") or ckpt.get("hyper_parameters", {}).get("dataset"),
            "include": data.get("include"), "exclude": data.get("exclude")}


def build_generator(ckpt: dict, path) -> nn.Module:
    cls = generator_class(ckpt, path)
    try:
        module = cls(**ckpt.get("hyper_parameters", {}))
        module.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"the generator checkpoint {path} does not fit {cls.__name__}: {str(e)[:200]}") from None
    return module.generator()


def load_generator(path: Union[str, Path], map_location="cpu") -> nn.Module:
    """Decoder/generator from a checkpoint: z (B, latent_dim) -> images (B, 1, 28, 28) in [0, 1],
    eval mode, parameters frozen, `.latent_dim` set."""
    return build_generator(read(path, "generator", map_location), path)
