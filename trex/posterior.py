"""The relaxed posterior p(z | u = u*) ∝ p(z) Π_k N(u*_k; u_k(f(g(z))), σ_k²) (paper Eq. 1)."""
from __future__ import annotations

import math

import torch
from torch import nn

from trex.samplers.base import value_and_grad
from trex.targets import Target, parse

OUTPUTS = ("logits", "log_probs", "probs")


class RelaxedPosterior:
    """Batched log density over chains: z (B, D) -> (B,), and its gradient.

    `classes` lists the original label of each classifier output (a subset classifier maps back);
    the target is bound to them here, so a bad target fails before anything is sampled.
    `sigma_factor` multiplies every σ; the runner anneals with tempered copies (trex.population.view),
    never changing this object.
    `chunk_size` splits big batches of chains: on a CPU, 256 chains in one pass cost ~1.5x more per
    chain than four passes of 64 (the activations stop fitting in cache). "auto": 64 on a CPU,
    no split on an accelerator, which wants the biggest batch it can get.
    """

    def __init__(self, distribution, classifier: nn.Module, target: Target | str, sigma: float = 0.05,
                 classes=None, output: str = "logits", num_classes: int | None = None,
                 chunk_size: int | None | str = "auto"):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.distribution = distribution
        self.classifier = classifier.eval().requires_grad_(False)
        if classes is None:
            k = num_classes or getattr(classifier, "num_classes", None)
            if k is None:
                raise ValueError("pass classes=[...] (or num_classes) so the target can be checked against them")
            classes = list(range(k))
        self.classes = [int(c) for c in classes]
        self.target = parse(target).bind(self.classes)
        self.output = output
        self.sigma = float(sigma)
        self.sigma_factor = 1.0
        if chunk_size == "auto":
            chunk_size = 64 if torch.device(getattr(distribution, "device", "cpu")).type == "cpu" else None
        self.chunk_size = chunk_size

    @property
    def dim(self) -> int:
        return self.distribution.dim

    def sigmas(self, m: int, like: torch.Tensor) -> torch.Tensor:
        s = self.target.sigmas if self.target.sigmas is not None else (self.sigma,) * m
        if len(s) != m:
            raise ValueError(f"target {self.target} has {m} statistics but {len(s)} sigmas")
        return like.new_tensor(s) * self.sigma_factor

    def probs(self, z: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        x = self.distribution.decode(z) if images is None else images
        out = self.classifier(x)
        if self.output == "logits":
            return out.softmax(-1)
        if self.output == "log_probs":
            return out.exp()
        return out

    def log_likelihood(self, probs: torch.Tensor) -> torch.Tensor:
        u = self.target.statistic(probs)
        u_star = self.target.observed(probs)
        s = self.sigmas(u.shape[-1], u)
        return (-0.5 * ((u - u_star) / s) ** 2 - s.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    def _chunks(self, z):
        n = self.chunk_size
        return z.split(n) if n and z.dim() == 2 and z.shape[0] > n else None

    def logdensity(self, z: torch.Tensor) -> torch.Tensor:
        if (parts := self._chunks(z)) is not None:
            return torch.cat([self.logdensity(c) for c in parts])
        return self.distribution.log_prior(z) + self.log_likelihood(self.probs(z))

    def logdensity_and_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if (parts := self._chunks(z)) is not None:
            lp, grad = zip(*(self.logdensity_and_grad(c) for c in parts))
            return torch.cat(lp), torch.cat(grad)
        return value_and_grad(self.logdensity, z)

    def propose(self, z, scale, generator=None):
        return self.distribution.propose(z, scale, generator)

    def distance(self, probs: torch.Tensor) -> torch.Tensor:
        return self.target.distance(probs)
