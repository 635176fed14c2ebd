"""Are sampled images in distribution? A k-nearest-neighbour typicality score against real images.

An image is compared with a bank of real training images in two views: the unit-normalised
penultimate features of a network other than the classifier being probed (that classifier's own
features are what the target steers, so they would call whatever it is sure of typical), and the
pixels. In each view the distance is the mean distance to the k nearest bank images, divided by its
median over held-out real images. The score is the mean of the two, divided by its `quantile`
(99 %) over the held-out images: a score <= 1 ("typical") means "as close to real data as 99 % of
held-out real images are". Each view alone lets something through: noise can sit close to digits
in a network's features, and a blank image sits close to a thin "1" in pixels. The mean of the two
ratios, rather than the larger, is what rejects noise and flat gray images even with a LeNet trained
for a few seconds (tests/test_typicality.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trex.errors import UserError


class Typicality:
    def __init__(self, features: nn.Module, bank: torch.Tensor, calibration: torch.Tensor, k: int = 5,
                 quantile: float = 0.99, batch: int = 1000):
        if len(calibration) < 100:
            raise ValueError(f"need at least 100 held-out images to calibrate a {quantile:.0%} threshold, "
                             f"got {len(calibration)}")
        self.net = features.eval().requires_grad_(False)
        self.k, self.quantile, self.batch = k, quantile, batch
        self.banks = self.views(bank)
        self.scales = [d.median() for d in self._distances(calibration)]
        self.threshold = float(torch.quantile(self._raw(calibration), quantile))

    @torch.no_grad()
    def views(self, images: torch.Tensor) -> list[torch.Tensor]:
        """[(N, F) unit-normalised network features, (N, P) pixels]; uint8 read as [0, 255], floats as [0, 1]."""
        dev = next(self.net.parameters()).device
        feats, pixels = [], []
        for x in images.split(self.batch):
            x = (x.float().div(255) if x.dtype == torch.uint8 else x.float()).to(dev)
            f = self.net.features(x) if hasattr(self.net, "features") else self.net(x)
            feats.append(F.normalize(f.flatten(1).float(), dim=1))
            pixels.append(x.flatten(1))
        return [torch.cat(feats), torch.cat(pixels)]

    @torch.no_grad()
    def _distances(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [torch.cat([torch.cdist(c, bank).topk(self.k, largest=False).values.mean(1) for c in v.split(self.batch)])
                for v, bank in zip(self.views(images), self.banks)]

    def _raw(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([d / s for d, s in zip(self._distances(images), self.scales)]).mean(0).cpu()

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """(N,) typicality score: <= 1 is typical."""
        return self._raw(images) / self.threshold

    def typical(self, images: torch.Tensor) -> torch.Tensor:
        return self.score(images) <= 1.0


def annotate(res, judge: Typicality) -> None:
    """Score every kept draw of a SampleSet (with stored images) and record the share of typical ones."""
    if res.images is None:
        raise UserError("typicality needs the draws' images: sample with store_images=True (or typicality=null)")
    flat = torch.from_numpy(res.flat("images"))
    res.typicality = judge.score(flat).numpy().reshape(res.num_chains, res.num_samples)
    res.meta.setdefault("diagnostics", {})["typical_share"] = res.typical_share()
    res.meta["typicality_threshold"] = judge.threshold
