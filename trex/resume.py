"""Resume files: the whole state of an interrupted run, written atomically and read without running code.

A resume file holds tensors, plain containers and a few small classes of ours (states, tuned
parameters, adaptation, the recorder), allow-listed for `torch.load(weights_only=True)`: a file
someone hands you can rebuild those and nothing else. The surrogate net is kept as a state dict.
The file also records a signature of everything that defines the run; a different run is refused
with the names of the settings that differ.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from trex.errors import UserError
from trex.safeload import read
from trex.samplers.base import DualAveraging, PooledVariance, State
from trex.samplers.hmc import ChEES, HMCAdaptation, HMCParams
from trex.samplers.rwm import RWMAdaptation, RWMParams
from trex.stuck import StuckWatch
from trex.surrogate import LogitSurrogate, PointTap


class ResumeError(UserError):
    """A resume file that belongs to another run."""


def weights_hash(*modules) -> str:
    """sha256 over the parameters and buffers of the models a run samples against (16 hex digits)."""
    h = hashlib.sha256()
    for m in modules:
        for name, t in m.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def to_device(x, device):
    """Tensors inside x (tuples, named tuples, lists, dicts and our small state classes) on `device`."""
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, tuple):
        items = [to_device(v, device) for v in x]
        return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
    if isinstance(x, list):
        return [to_device(v, device) for v in x]
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if hasattr(x, "__dict__") and not isinstance(x, (torch.nn.Module, type)):
        for k, v in vars(x).items():
            if k != "kernel":
                setattr(x, k, to_device(v, device))
    return x


def refuse_other_run(path, old, signature: dict) -> None:
    """Stop, naming the settings that differ, unless `old` (what `path` records) is `signature`."""
    if isinstance(old, dict) and old == signature:
        return
    old = old if isinstance(old, dict) else {}
    diff = [k for k in sorted(set(signature) | set(old)) if old.get(k) != signature.get(k)]
    shown = "; ".join(f"{k}: {old.get(k, '(not recorded)')!r} there, {signature.get(k)!r} now" for k in diff[:6])
    raise ResumeError(f"{path} belongs to a different run ({shown}). Start fresh in another run folder, or "
                      f"delete {path} to discard the old run's results")


def save(path, obj: dict) -> None:
    """Write `obj` to `path` atomically (a crash mid-write leaves the previous file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = dict(obj)
    net = obj.pop("guide_net", None)
    obj["guide"] = None if net is None else {"state_dict": net.state_dict(), "sizes": net.sizes}
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path, signature: dict, kernel=None, recorder_class=None, map_location=None):
    """The saved state at `path` (None if there is none), with the adaptation bound to `kernel` again and
    the surrogate net rebuilt as `guide_net`. Refuses a file of another run, naming what differs."""
    if not path or not Path(path).exists():
        return None
    safe = [State, HMCParams, RWMParams, HMCAdaptation, RWMAdaptation, ChEES, DualAveraging, PooledVariance,
            PointTap, StuckWatch] + ([recorder_class] if recorder_class else [])
    ck = read(path, "resume state", map_location=map_location, safe_globals=safe)
    refuse_other_run(path, ck.get("signature"), signature)
    adapts = ck.get("adapt")
    for a in adapts if isinstance(adapts, list) else [adapts]:  # one per target
        if kernel is not None and isinstance(a, HMCAdaptation):
            a.kernel = kernel
    g = ck.pop("guide", None)
    if g is not None:
        net = LogitSurrogate(**g["sizes"])
        net.load_state_dict(g["state_dict"])
        ck["guide_net"] = net.eval().requires_grad_(False)
    else:
        ck["guide_net"] = None
    return ck
