"""Recurring modes among one target's draws: cluster the draws' feature vectors (the caller's choice:
a classifier's penultimate layer, flattened images, latents) and report each mode's share of the
draws and one representative draw.

KMeans with k chosen by the silhouette score, not a Gaussian mixture by BIC: the features are
high-dimensional (128 to 784 numbers) for a few thousand draws, where a full-covariance mixture has
k·D² parameters to fit and BIC's penalty on them, not the data, decides k; KMeans and the silhouette
need only distances. The silhouette is undefined for one cluster, so one mode is reported when the
best score stays below 0.25, the level Kaufman & Rousseeuw read as "no substantial structure".
That threshold holds in the feature spaces meant here (a single Gaussian blob scores 0.12 in 6-D,
0.01 in 128-D), not in two or three dimensions, where one blob cut in pieces already scores
0.23-0.34: do not cluster a t-SNE map with it.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

MIN_SILHOUETTE = 0.25


def find_modes(features, k_range=range(2, 7), seed: int = 0, sample_size: int = 2000,
               min_silhouette: float = MIN_SILHOUETTE) -> dict:
    """Cluster (N, F) features. Returns k, labels (N,) with mode 0 the largest, shares (k,) in that
    order, representatives (k,) the index of the draw closest to each mode's centre, and the
    silhouette of every k tried. The silhouette is scored on at most `sample_size` draws (it costs N²)."""
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    scores, fits = {}, {}
    for k in (k for k in k_range if 2 <= k < len(x)):
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)
        scores[k] = float(silhouette_score(x, km.labels_, sample_size=min(sample_size, len(x)), random_state=seed))
        fits[k] = km.labels_
    best = max(scores, key=scores.get) if scores else None
    labels = fits[best] if best is not None and scores[best] >= min_silhouette else np.zeros(len(x), dtype=int)
    counts = np.bincount(labels)
    order = np.argsort(-counts, kind="stable")  # largest mode first
    labels = np.argsort(order)[labels]
    reps = []
    for m in range(len(order)):
        idx = np.flatnonzero(labels == m)
        centre = x[idx].mean(0)
        reps.append(int(idx[np.argmin(((x[idx] - centre) ** 2).sum(1))]))
    return {"k": len(order), "labels": labels, "shares": counts[order] / len(x), "representatives": np.array(reps),
            "silhouette": scores}


def modes_figure(images, modes: dict, title: str = "modes") -> Figure:
    """One representative image per mode (images (N, C, H, W) uint8 or [0, 1], indexed like the
    features), each titled with its share of the draws."""
    k = modes["k"]
    fig = Figure(figsize=(1.3 * k + 0.4, 1.8))
    axes = fig.subplots(1, k, squeeze=False)[0]
    for m, ax in enumerate(axes):
        img = np.asarray(images[modes["representatives"][m]])
        img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
        ax.imshow(img, cmap="gray", vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"mode {m + 1}: {modes['shares'][m]:.0%}", fontsize=8)
    fig.suptitle(f"{title}: {k} mode{'s' if k > 1 else ''}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
