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
    """PNG grid of the best-matching images (stuck chains get no slot of their own); draws whose
    typicality score says they are unlike real data get a red frame. Returns the grid (3, H, W)."""
    if s.images is None:
        raise ValueError("this SampleSet has no stored images (sample with store_images=True)")
    idx = best_indices(s, n, exclude_chains=s.diagnostics.get("stuck_chains", ()))
    imgs = framed(torch.from_numpy(s.flat("images")[idx]).float() / 255.0,
                  None if s.typicality is None else s.typicality.reshape(-1)[idx] > 1.0)
    grid = make_grid(imgs, nrow=nrow, padding=2, pad_value=1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, str(path))
    return grid


def framed(imgs: torch.Tensor, atypical=None, width: int = 2) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N, 3, H + 2w, W + 2w): a black frame, red where `atypical`."""
    rgb = imgs.expand(-1, 3, -1, -1) if imgs.shape[1] == 1 else imgs
    out = torch.zeros(len(rgb), 3, rgb.shape[2] + 2 * width, rgb.shape[3] + 2 * width)
    if atypical is not None:
        out[torch.as_tensor(np.asarray(atypical), dtype=torch.bool), 0] = 1.0
    out[:, :, width:-width, width:-width] = rgb
    return out


def typicality_figure(s, path, n: int = 8, title=None):
    """The n most and the n least typical draws side by side, each with its score (<= 1: typical)."""
    if s.images is None or s.typicality is None:
        raise ValueError("typicality_figure needs stored images and typicality scores")
    score = s.typicality.reshape(-1)
    order = np.argsort(score, kind="stable")
    rows = [("most typical", _spread(order, s.chain_ids, n)), ("least typical", _spread(order[::-1], s.chain_ids, n))]
    fig, axes = plt.subplots(2, n, figsize=(1.1 * n, 2.9))
    imgs = s.flat("images")
    for r, (label, idx) in enumerate(rows):
        for c, i in enumerate(idx):
            ax = axes[r, c]
            ax.imshow(imgs[i].squeeze(), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{score[i]:.2f}", fontsize=8, color="tab:red" if score[i] > 1 else "k")
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    share = float((score <= 1).mean())
    fig.suptitle(title or f"{s.meta.get('target', '')}: {share:.0%} of draws typical (score <= 1)", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


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


def _spread(order: np.ndarray, chains: np.ndarray, n: int) -> np.ndarray:
    """The first n of `order`, taking each chain's first draw before any chain's second (variety:
    one chain's neighbouring draws look alike)."""
    first = np.zeros(len(order), dtype=bool)
    first[np.unique(chains[order], return_index=True)[1]] = True
    return np.concatenate([order[first], order[~first]])[:n]


def figures(s, folder, grid_size: int = 64, class_names=None) -> None:
    """Every figure of one target's run into `folder`: grid.png (if images were kept), confidence.png,
    and typicality.png (if the draws were scored)."""
    folder = Path(folder)
    if s.images is not None:
        image_grid(s, folder / "grid.png", n=min(grid_size, s.num_chains * s.num_samples))
    confidence_plot(s, folder / "confidence.png", class_names=class_names)
    if s.images is not None and s.typicality is not None:
        typicality_figure(s, folder / "typicality.png")
