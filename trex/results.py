"""SampleSet: everything a sampling run produced, batched over chains, saved as .npz + manifest.json."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ARRAYS = ("latents", "probs", "logdensity", "accepted", "divergent", "step_size", "ideal", "images", "typicality",
          "accept_prob")


@dataclass
class SampleSet:
    """Kept samples of C chains × S draws.

    latents (C, S, D), probs (C, S, K) over `meta["classes"]`, logdensity (C, S),
    accepted / divergent (C, S) bool (for NUTS, accepted = the chain moved), accept_prob (C, S) the
    transition's acceptance probability (NUTS: its tree's mean) or None, step_size (C,) final per-chain step size (or RWM scale),
    ideal (K,) the confidence vector the target asks for, images (C, S, *shape) uint8 or None,
    typicality (C, S) each draw's typicality score (<= 1: as close to real data as 99 % of held-out
    real images; see trex.analysis.typicality) or None.
    meta: target, classes, sigma, sampler, seed, timings, gradient evaluations, diagnostics.
    """

    latents: np.ndarray
    probs: np.ndarray
    logdensity: np.ndarray
    accepted: np.ndarray
    divergent: np.ndarray
    step_size: np.ndarray
    ideal: np.ndarray
    images: np.ndarray | None = None
    typicality: np.ndarray | None = None
    accept_prob: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_chains(self) -> int:
        return self.latents.shape[0]

    @property
    def num_samples(self) -> int:
        return self.latents.shape[1]

    @property
    def chain_ids(self) -> np.ndarray:
        """Chain index of each flattened sample, (C*S,)."""
        return np.repeat(np.arange(self.num_chains), self.num_samples)

    @property
    def accept_rate(self) -> np.ndarray:
        return self.accepted.mean(1)

    @property
    def divergences(self) -> np.ndarray:
        return self.divergent.sum(1)

    @property
    def diagnostics(self) -> dict:
        return self.meta.get("diagnostics", {})

    def distance(self) -> np.ndarray:
        """Largest gap between each sample's confidences and the target's ideal vector, (C, S)."""
        return np.abs(self.probs - self.ideal).max(-1)

    def near_target(self, tol: float = 0.1) -> float:
        """Share of kept samples whose confidences all lie within `tol` of the target."""
        return float((self.distance() <= tol).mean())

    def typical_share(self) -> float | None:
        """Share of kept draws whose typicality score is <= 1 (None when no score was computed)."""
        return None if self.typicality is None else float((self.typicality <= 1.0).mean())

    def flat(self, name: str) -> np.ndarray:
        a = getattr(self, name)
        return a.reshape(-1, *a.shape[2:])

    def confidence_summary(self) -> dict:
        """Mean ± std of each class probability over all kept samples (as in the paper's tables)."""
        p = self.flat("probs")
        classes = self.meta.get("classes", list(range(p.shape[-1])))
        return {int(c): (float(p[:, k].mean()), float(p[:, k].std())) for k, c in enumerate(classes)}

    def save(self, folder) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k) for k in ARRAYS if getattr(self, k) is not None}
        tmp = folder / "samples.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, folder / "samples.npz")
        manifest = {"format": "trex.SampleSet/1", "arrays": {k: list(v.shape) for k, v in arrays.items()},
                    "meta": self.meta}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_jsonable))
        return folder

    @classmethod
    def load(cls, folder) -> "SampleSet":
        folder = Path(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        with np.load(folder / "samples.npz") as z:
            arrays = {k: z[k] for k in z.files}
        return cls(**arrays, meta=manifest["meta"])


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)
