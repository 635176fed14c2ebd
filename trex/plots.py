"""Figures for sampling runs: image grids, confidence plots, ambiguity matrices (matplotlib, PNG)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid, save_image  # noqa: E402


def best_indices(s, n: int = 64, per_chain: bool = True, exclude_chains=()) -> np.ndarray:
    """Flat indices of the n samples closest to the target, best first.

    With `per_chain`, the first slots hold each chain's own best draw (for variety), the rest the
    closest of all remaining draws. Chains in `exclude_chains` (stuck ones) get no slot of their own;
    their draws compete only for the remaining slots, on distance like any other.
    """
    d = s.distance().reshape(-1)
    by_distance = np.argsort(d, kind="stable")
    if not per_chain:
        return by_distance[:n]
    keep = np.setdiff1d(np.arange(s.num_chains), np.asarray(exclude_chains, dtype=int))
    best = s.distance()[keep].argmin(1) + keep * s.num_samples
    order = best[np.argsort(d[best], kind="stable")][:n]
    # the leftovers in order of distance: np.setdiff1d would sort them by index (chain 0 first)
    rest = by_distance[~np.isin(by_distance, order)]
    return np.concatenate([order, rest[: n - len(order)]])


def image_grid(s, path, n: int = 64, nrow: int = 8) -> torch.Tensor:
    """PNG grid of the best-matching images; returns the grid tensor (3, H, W)."""
    if s.images is None:
        raise ValueError("this SampleSet has no stored images (sample with store_images=True)")
    idx = best_indices(s, n)
    imgs = torch.from_numpy(s.flat("images")[idx]).float() / 255.0
    grid = make_grid(imgs, nrow=nrow, padding=2, pad_value=1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, str(path))
    return grid


def confidence_plot(s, path, class_names=None, title=None):
    """Strip + violin plot of every class's predicted probability over the kept samples,
    with the target's ideal value marked (the paper's figure style)."""
    p = s.flat("probs")
    classes = s.meta.get("classes", list(range(p.shape[-1])))
    names = [class_names[c] if class_names else str(c) for c in classes]
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(classes) + 1.5), 3.2))
    ax.violinplot([p[:, k] for k in range(len(classes))], positions=range(len(classes)), showextrema=False)
    rng = np.random.default_rng(0)
    take = rng.choice(len(p), size=min(len(p), 400), replace=False)
    for k in range(len(classes)):
        ax.scatter(k + rng.uniform(-0.15, 0.15, len(take)), p[take, k], s=3, alpha=0.3, color="k")
        ax.hlines(s.ideal[k], k - 0.35, k + 0.35, color="tab:red", lw=2)
    ax.set_xticks(range(len(classes)), names, rotation=45 if class_names else 0)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("predicted probability")
    ax.set_title(title or f"{s.meta.get('target', '')}: {len(p)} samples (red: target)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def ambiguity_matrix(values: np.ndarray, path, class_names=None, title="ambiguous samples found"):
    """Heat map of a K × K matrix (e.g. share of samples near the i-vs-j target)."""
    k = values.shape[0]
    names = class_names or [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(5, 4.4))
    im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(k), names, rotation=45)
    ax.set_yticks(range(k), names)
    for i in range(k):
        for j in range(k):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
