"""SmoothGrad saliency (Smilkov et al. 2017) through Captum, and a figure of each image beside its map.

SmoothGrad averages the input gradient over Gaussian-perturbed copies of the input,
    M(x) = mean_n |d f_c(x + eps_n) / dx|,  eps_n ~ N(0, stdev^2 I),
which Captum computes as NoiseTunnel(Saliency(model)) with nt_type="smoothgrad" (Saliency takes
|gradient| by default, the usual reading of the maps). The paper uses it on scenes (removing the
object SmoothGrad highlights drops p(1 cube) from 93.5 % to 29.0 %); here it works on any batch of
images and any classifier, with one class per image.

`stdev` is absolute: the default 0.15 is 15 % of the range of images in [0, 1], inside the 10-20 %
the SmoothGrad paper recommends. The class f_c is the classifier's logit by default: the softmax
probability saturates for a confident prediction (p = 0.999), so its gradient, and the map, all but
vanish exactly where Bayes-TrEx's high-confidence samples live; `output="prob"` takes it anyway.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from captum.attr import NoiseTunnel, Saliency
from matplotlib.figure import Figure
from torch import nn


class _Probabilities(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).softmax(-1)


def smoothgrad(classifier: nn.Module, images, targets, stdev: float = 0.15, n_samples: int = 50,
               output: str = "logit", batch_size: int = 64, seed: int = 0, absolute: bool = True) -> np.ndarray:
    """SmoothGrad map of every image w.r.t. its own class.

    images: (N, C, H, W) float (uint8 is read as pixel / 255); targets: one output index of the
    classifier per image (N,), or one int for all (for a classifier over a class subset, the index
    into its `classes`, not the original label). Returns float32 maps (N, C, H, W), >= 0 when
    `absolute`. The noise is drawn from a generator seeded by `seed` (the global torch RNG is left as
    it was); the classifier is run in eval mode and put back in the mode it was in.
    """
    if output not in ("logit", "prob"):
        raise ValueError(f"output must be 'logit' or 'prob', got {output!r}")
    x = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}")
    t = torch.as_tensor(np.asarray(targets) if not torch.is_tensor(targets) else targets, dtype=torch.long)
    t = t.expand(len(x)).clone() if t.dim() == 0 else t
    if t.shape != (len(x),):
        raise ValueError(f"targets must be one class per image ({len(x)}), got shape {tuple(t.shape)}")
    device = next(iter(classifier.parameters()), torch.empty(0)).device
    model = classifier if output == "logit" else _Probabilities(classifier)
    k = _num_outputs(classifier, x[:1].to(device))
    if len(t) and (t.min() < 0 or t.max() >= k):
        raise ValueError(f"targets must be output indices in 0..{k - 1}, got {sorted(set(t.tolist()))}")
    tunnel = NoiseTunnel(Saliency(model))
    was_training = classifier.training
    classifier.eval()
    out = []
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)  # NoiseTunnel draws its noise from the global RNG
            for i in range(0, len(x), batch_size):
                xb = x[i:i + batch_size].to(device)
                maps = tunnel.attribute(xb, nt_type="smoothgrad", nt_samples=n_samples, stdevs=float(stdev),
                                        nt_samples_batch_size=max(1, 4096 // len(xb)),
                                        target=t[i:i + batch_size].to(device), abs=absolute)
                out.append(maps.detach().cpu())
    finally:
        classifier.train(was_training)
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(tuple(x.shape), np.float32)


def _num_outputs(classifier: nn.Module, x1: torch.Tensor) -> int:
    k = getattr(classifier, "num_classes", None)
    if k is None:
        with torch.no_grad():
            was = classifier.training
            k = classifier.eval()(x1).shape[-1]
            classifier.train(was)
    return int(k)


def saliency_figure(images, maps, titles: Sequence[str] | None = None, per_row: int = 4,
                    title: str | None = None, cmap: str = "inferno") -> Figure:
    """Each image (left, grey) beside its saliency map (right, heat map), `per_row` pairs a row.

    Every map is scaled to its own maximum (SmoothGrad maps of different images are not on a common
    scale: their gradients differ by orders of magnitude between confident and ambiguous inputs); the
    channels of a colour map are reduced by their maximum. `titles` (one per image) go over the pairs.
    """
    imgs, maps = np.asarray(images), np.asarray(maps, dtype=np.float64)
    if len(imgs) != len(maps):
        raise ValueError(f"{len(imgs)} images but {len(maps)} saliency maps")
    n = len(imgs)
    cols = max(1, min(per_row, n))
    rows = -(-n // cols) if n else 1
    fig = Figure(figsize=(2.3 * cols, (1.35 if titles is not None else 1.2) * rows + (0.3 if title else 0.05)),
                 layout="constrained")
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(n):
        r, c = divmod(i, cols)
        img = imgs[i]
        img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
        vmax = 255 if img.dtype == np.uint8 else 1
        axes[r, 2 * c].imshow(img, cmap="gray", vmin=0, vmax=vmax)
        m = np.abs(maps[i]).max(0)
        axes[r, 2 * c + 1].imshow(m / m.max() if m.max() > 0 else m, cmap=cmap, vmin=0, vmax=1)
        if titles is not None:
            axes[r, 2 * c].set_title(titles[i], fontsize=7, loc="left")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
