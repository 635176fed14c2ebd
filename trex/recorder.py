"""The kept draws of a run, collected on the CPU as the chains go."""
from __future__ import annotations

import torch


class Recorder:
    """Collects kept draws on the CPU; decodes images and class probabilities once per kept step."""

    def __init__(self, store_images: bool):
        self.store_images = store_images
        self.rows = {k: [] for k in ("latents", "probs", "logdensity", "accepted", "accept_prob", "divergent",
                                     "images")}

    def add(self, posterior, position, logdensity, accepted, divergent, accept_prob, chunk: int = 1024,
            known: "LastProbs | None" = None):
        """Keep one step's draws. `known` holds the probabilities the run already computed where chains
        are now (an accepted proposal was just evaluated; a rejected chain keeps its last ones): only
        the other rows go through the classifier again (after a resume, or a chain moved by a stage)."""
        with torch.no_grad():
            x = None
            if self.store_images or known is None:
                x = torch.cat([posterior.distribution.decode(c) for c in position.split(chunk)])
            if known is None:
                p = torch.cat([posterior.probs(c, images=xc) for c, xc in zip(position.split(chunk), x.split(chunk))])
            else:
                p = known.probs_at(position, posterior.probs, chunk)
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


class LastProbs:
    """Class probabilities at each chain's current position, taken from evaluations the run makes anyway.

    As a Population's `memo` it sees every evaluation with the batch rows it belongs to, and keeps the
    last point and probabilities per row. `follow(position)` then keeps, for each row whose position
    is that last point (an accepted proposal, a start just evaluated), those probabilities as the
    row's current ones; a rejected chain keeps the ones it had. Each HMC / RWM step evaluates every
    proposal last, so after a step every row is known unless a stage moved it without evaluating it.
    No host sync: comparisons and torch.where only."""

    def __init__(self, batch: int, dim: int, num_classes: int, device=None, dtype=torch.float32):
        nan = dict(fill_value=float("nan"), device=device, dtype=dtype)
        self.seen_z, self.seen_p = torch.full((batch, dim), **nan), torch.full((batch, num_classes), **nan)
        self.z, self.p = self.seen_z.clone(), self.seen_p.clone()

    def __call__(self, z, probs, rows):
        self.seen_z[rows] = z.detach().to(self.seen_z)
        self.seen_p[rows] = probs.detach().to(self.seen_p)

    def follow(self, position) -> None:
        hit = (self.seen_z == position).all(-1, keepdim=True)
        self.z, self.p = torch.where(hit, self.seen_z, self.z), torch.where(hit, self.seen_p, self.p)

    def at(self, position):
        """(probabilities (B, K), which rows are known for `position` (B,) bool)."""
        return self.p, (self.z == position).all(-1)

    def probs_at(self, position, probs_fn, chunk: int = 1024):
        """The probabilities at `position` (B, D): the known rows from here, the others from
        probs_fn (the classifier on the decoded rows). Reads back which rows are unknown: one host
        sync, for callers that read their result anyway (the recorder, stuck-chain checks)."""
        self.follow(position)  # what a stage just evaluated counts too
        p, valid = self.at(position)
        todo = (~valid).nonzero().squeeze(1)
        if len(todo):
            p = p.clone()
            p[todo] = torch.cat([probs_fn(c) for c in position[todo].split(chunk)]).to(p)
        return p
