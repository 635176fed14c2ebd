"""Two classifiers read as one: their class probabilities side by side, for targets over both models
(trex.targets.Disagreement). Both are submodules, so a run's weights hash covers both."""
from __future__ import annotations

import torch
from torch import nn


class Stacked(nn.Module):
    """x -> [softmax(a(x)), softmax(b(x))], shape (B, K_a + K_b). Use it with `output="probs"` and
    `classes=stacked.classes` in a RelaxedPosterior: each half is its own probability vector, so no
    softmax may run across the two."""

    def __init__(self, a: nn.Module, b: nn.Module, classes_a=None, classes_b=None):
        super().__init__()
        self.a, self.b = a, b
        ka, kb = (getattr(m, "num_classes", None) for m in (a, b))
        classes_a = list(range(ka)) if classes_a is None and ka else classes_a
        classes_b = list(range(kb)) if classes_b is None and kb else classes_b
        if classes_a is None or classes_b is None:
            raise ValueError("pass classes_a and classes_b (the models have no num_classes attribute)")
        self.classes = [int(c) for c in classes_a] + [int(c) for c in classes_b]
        self.num_classes = len(self.classes)
        self.split = len(classes_a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x).softmax(-1), self.b(x).softmax(-1)], -1)

    def halves(self, probs):
        """Stacked probabilities (..., K_a + K_b) -> (model A's, model B's)."""
        return probs[..., :self.split], probs[..., self.split:]
