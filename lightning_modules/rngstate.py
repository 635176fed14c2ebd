"""Random state in checkpoints, so that a training resumed from last.ckpt goes on exactly as the
uninterrupted one would have: same data order, dropout masks and GAN noise, hence the same weights digest.
Lightning's checkpoint keeps the weights, optimizers and loop counters but not the generators' state, and
train.py seeds once at the start, so without this a resumed epoch k+1 would replay epoch 1's shuffle."""
from __future__ import annotations

import random

import numpy as np
import torch
from pytorch_lightning.callbacks import Callback

KEY = "rng_states"


def collect() -> dict:
    """Plain tensors and numbers only: checkpoints are read with weights_only=True."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RNGStates(Callback):
    """Saves every generator's state with each checkpoint (taken at the end of an epoch, after its
    validation) and puts it back when a run resumes from one."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[KEY] = collect()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if KEY in checkpoint:  # checkpoints from before this callback resume as they used to
            restore(checkpoint[KEY])
