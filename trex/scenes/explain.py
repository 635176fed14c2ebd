"""Explaining sampled scenes: SmoothGrad saliency (Captum's NoiseTunnel over Saliency) per object,
and object removal (re-render without each object in turn; how much the confidence drops).

`classifier` is a plain images -> logits module (a FixedQuestion for a counting network).
"""
from __future__ import annotations

import torch

from trex.scenes import vocab


def smoothgrad(classifier, images: torch.Tensor, answer: int, samples: int = 16, stdev: float = 0.1,
               batch: int = 16, seed: int = 0) -> torch.Tensor:
    """|SmoothGrad| of p(answer) w.r.t. the pixels, summed over colour channels: (B, H, W)."""
    from captum.attr import NoiseTunnel, Saliency

    probs = _Probs(classifier)
    nt = NoiseTunnel(Saliency(probs))
    torch.manual_seed(seed)  # Captum draws its noise from the global generator
    out = []
    for x in images.split(batch):
        a = nt.attribute(x.clone().requires_grad_(True), nt_type="smoothgrad", nt_samples=samples, stdevs=stdev,
                         target=int(answer), abs=True)
        out.append(a.detach().sum(1))
    return torch.cat(out)


class _Probs(torch.nn.Module):
    """Saliency of the probability, not the logit (the target statistic is a probability)."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(x).softmax(-1)


def object_saliency(saliency: torch.Tensor, ids: torch.Tensor, max_objects: int) -> torch.Tensor:
    """Saliency mass on each object's visible pixels, (B, M); 0 for objects not in the picture."""
    b = saliency.shape[0]
    flat_ids = ids.reshape(b, -1)
    mass = torch.zeros(b, max_objects + 1, dtype=saliency.dtype)
    return mass.scatter_add_(1, (flat_ids + 1).clamp(min=0), saliency.reshape(b, -1))[:, 1:]


@torch.no_grad()
def removal(classifier, prior, z: torch.Tensor, answer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """p(answer) for each scene (B,) and for each scene without object m, (B, M) (NaN where slot m is
    empty). Removing an object sets its `exists` flag to 0 and re-renders."""
    b, m = z.shape[0], prior.max_objects
    s = vocab.as_slots(z)
    full = classifier(prior.decode(z)).softmax(-1)[:, answer]
    variants = s[:, None].repeat(1, m, 1, 1)
    idx = torch.arange(m)
    variants[:, idx, idx, vocab.EXISTS] = 0
    p = classifier(prior.decode(variants.reshape(b * m, -1))).softmax(-1)[:, answer].reshape(b, m)
    return full, torch.where(s[..., vocab.EXISTS] > 0.5, p, torch.full_like(p, float("nan")))
