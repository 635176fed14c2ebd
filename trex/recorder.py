"""The kept draws of a run, collected on the CPU as the chains go."""
from __future__ import annotations

import torch


class Recorder:
    """Collects kept draws on the CPU; decodes images and class probabilities once per kept step."""

    def __init__(self, store_images: bool):
        self.store_images = store_images
        self.rows = {k: [] for k in ("latents", "probs", "logdensity", "accepted", "accept_prob", "divergent",
                                     "images")}

    def add(self, posterior, position, logdensity, accepted, divergent, accept_prob, chunk: int = 1024):
        with torch.no_grad():
            x = torch.cat([posterior.distribution.decode(c) for c in position.split(chunk)])
            p = torch.cat([posterior.probs(c, images=xc) for c, xc in zip(position.split(chunk), x.split(chunk))])
        self.rows["latents"].append(position.float().cpu())
        self.rows["probs"].append(p.float().cpu())
        self.rows["logdensity"].append(logdensity.float().cpu())
        self.rows["accepted"].append(accepted.cpu())
        self.rows["accept_prob"].append(accept_prob.float().cpu())
        self.rows["divergent"].append(divergent.cpu())
        if self.store_images:
            self.rows["images"].append((x.clamp(0, 1) * 255).round().to(torch.uint8).cpu())
        return p

    def __len__(self):
        return len(self.rows["latents"])

    def split(self, slices) -> list[dict]:
        """The draws of each group of chains (one per target), chains first: (C, S, ...)."""
        whole = {k: torch.stack(v).transpose(0, 1) for k, v in self.rows.items() if v}  # (S, B, ...) -> (B, S, ...)
        return [{k: v[sl].numpy() for k, v in whole.items()} for sl in slices]
