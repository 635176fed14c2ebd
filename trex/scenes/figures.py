"""Figures of the scene experiments: sampled scenes per target, and a scene beside its SmoothGrad
saliency and its object-removal table (matplotlib, PNG)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from trex.scenes import vocab  # noqa: E402


def _show(ax, img):
    ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def scene_rows(rows: list[tuple[str, torch.Tensor, list[str]]], path, size=1.6):
    """One row per target: (title, images (N, 3, H, W), a caption per image)."""
    n = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(size * n, size * len(rows) + 0.3 * len(rows)), squeeze=False)
    for i, (title, imgs, caps) in enumerate(rows):
        for j in range(n):
            ax = axes[i, j]
            if j < len(imgs):
                _show(ax, imgs[j])
                ax.set_xlabel(caps[j], fontsize=7)
            else:
                ax.axis("off")
        axes[i, 0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(slot) -> str:
    return (f"{vocab.SIZES[int(slot[vocab.SIZE])]} {vocab.COLOURS[int(slot[vocab.COLOUR])]} "
            f"{vocab.MATERIALS[int(slot[vocab.MATERIAL])]} {vocab.SHAPES[int(slot[vocab.SHAPE])]}")


def explanation(z: torch.Tensor, expl: dict, rows: int, title: str, answer_text: str, path):
    """Per scene: the picture with object numbers, SmoothGrad saliency, and p(answer) without each object."""
    rows = min(rows, len(z))
    fig, axes = plt.subplots(rows, 3, figsize=(10.5, 3.1 * rows), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1.5]})
    for i in range(rows):
        img, ids, sal = expl["images"][i], expl["ids"][i], expl["saliency"][i]
        s = vocab.as_slots(z[i:i + 1])[0]
        on = [m for m in range(len(s)) if s[m, vocab.EXISTS] > 0.5]
        _show(axes[i, 0], img)
        for m in on:  # number each object at its visible pixels' centre
            rr, cc = torch.nonzero(ids == m, as_tuple=True)
            if len(rr):
                axes[i, 0].text(float(cc.float().mean()), float(rr.float().mean()), str(m), color="white",
                                fontsize=8, ha="center", va="center", weight="bold")
        axes[i, 0].set_title(f"{answer_text}: p = {float(expl['full'][i]):.3f}", fontsize=8)
        # saliency over the grey picture, opaque where it is high (scaled to its 99th percentile)
        heat = (sal / sal.flatten().quantile(0.99).clamp(min=1e-12)).clamp(0, 1).numpy()
        rgba = plt.get_cmap("inferno")(heat)
        rgba[..., 3] = heat ** 0.7
        axes[i, 1].imshow(img.permute(1, 2, 0).mean(-1).numpy(), cmap="gray", vmin=0, vmax=1)
        axes[i, 1].imshow(rgba)
        axes[i, 1].set_xticks([])
        axes[i, 1].set_yticks([])
        axes[i, 1].set_title(f"SmoothGrad; most salient: object {int(expl['salient'][i])}", fontsize=8)
        ax = axes[i, 2]
        p = [float(expl["without"][i, m]) for m in on]
        labels = [f"{m}: {_short(s[m])}" for m in on]
        colours = ["tab:red" if m == int(expl["decisive"][i]) else "tab:gray" for m in on]
        ax.barh(range(len(on)), p, color=colours)
        ax.axvline(float(expl["full"][i]), color="black", lw=1, ls="--")
        ax.set_yticks(range(len(on)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title("p(answer) with each object removed (dashed: all objects)", fontsize=8)
        for k, v in enumerate(p):
            ax.text(min(v + 0.02, 0.85), k, f"{v:.3f}", va="center", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
