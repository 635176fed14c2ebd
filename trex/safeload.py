"""Reading checkpoints without running code, with one clear message for each way a file can be wrong
(pure torch: used by trex's resume files and by the Lightning checkpoint loaders).

Every checkpoint this project reads goes through `read`: `torch.load(..., weights_only=True)` rebuilds
only tensors and plain containers, so a shared file cannot execute anything when it is opened
(pickle's default would run whatever the file names). Lightning's own checkpoints are such files.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from trex.errors import UserError


class CheckpointError(UserError):
    """A checkpoint that cannot be used: missing, unreadable, refused, or of the wrong kind."""


def read(path, role: str, map_location="cpu", safe_globals=()) -> dict:
    """The checkpoint at `path` as a dict of tensors and plain data. `role` names it in messages
    ("classifier", "generator", "resume state"); `safe_globals` allow-lists classes of our own."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"the {role} checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise CheckpointError(
                f"refused the {role} checkpoint {path}: it holds Python objects, not only tensors and plain "
                f"data, and unpickling them could run code. Use a checkpoint written by this project's "
                f"train.py, or re-save the weights you trust as a plain state dict") from None
        raise CheckpointError(f"cannot read the {role} checkpoint {path}: not a PyTorch checkpoint "
                              f"({_first_line(e)})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"cannot read the {role} checkpoint {path}: the file is truncated or damaged "
                              f"({_first_line(e)}); copy or train it again") from None
    if not isinstance(ck, dict):
        raise CheckpointError(f"the {role} checkpoint {path} holds a {type(ck).__name__}, not a checkpoint dict")
    return ck


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]


def weights_digest(ck: dict) -> str:
    """A short hash of a checkpoint's weights (its `state_dict`, or the dict itself for a bare one): names,
    dtypes, shapes and values in name order. Two runs drew from the same model exactly when their digests
    agree, whatever else the files hold (optimizer state, paths, library versions)."""
    import hashlib
    state = ck.get("state_dict", ck)
    h = hashlib.sha256()
    for name in sorted(k for k, v in state.items() if isinstance(v, torch.Tensor)):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
