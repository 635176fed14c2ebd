"""An independent labeler for sampled images: several classifiers of different architectures, trained
on real data, that label a draw only when they all agree (paper Sec. 4.8 labels its samples by hand).
Pure numpy: the probabilities come from whatever networks the caller runs."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def ensemble_vote(probs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Labels from M labelers' class probabilities (each (N, K)): the common argmax where all agree,
    -1 where any disagrees; and the agreement mask (N,)."""
    if not probs:
        raise ValueError("the labeler ensemble needs at least one labeler")
    shapes = {np.shape(p) for p in probs}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every labeler must give (N, K) probabilities for the same N and K, got {sorted(shapes)}")
    votes = np.stack([np.asarray(p).argmax(-1) for p in probs])  # (M, N)
    agree = (votes == votes[0]).all(0)
    return np.where(agree, votes[0], -1), agree


def accuracy_table(wanted: np.ndarray, labels: np.ndarray, agree: np.ndarray, classes: Sequence[int]) -> dict:
    """A classifier's accuracy on samples it is confident on: `wanted` (N,) the class each sample was
    drawn to be confident in, `labels`/`agree` the ensemble's verdict. Only agreed samples count.
    Returns {class: {draws, kept, correct, accuracy}} and an "all" row (accuracy None when none kept)."""
    wanted, labels, agree = (np.asarray(a) for a in (wanted, labels, agree))
    rows = {}
    for c in [*classes, "all"]:
        sel = np.ones_like(agree) if c == "all" else wanted == c
        kept = sel & agree
        correct = int((labels[kept] == wanted[kept]).sum())
        rows[c] = {"draws": int(sel.sum()), "kept": int(kept.sum()), "correct": correct,
                   "accuracy": correct / int(kept.sum()) if kept.any() else None}
    return rows


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict:
    """Per confidence bin (top-class probability, equal-width bins on [0, 1]): mean confidence,
    accuracy and count; and the expected calibration error they give (L1, as torchmetrics' default)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    conf, pred = probs.max(-1), probs.argmax(-1)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    out = {"edges": edges.tolist(), "confidence": [], "accuracy": [], "count": []}
    ece = 0.0
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        out["count"].append(n)
        out["confidence"].append(float(conf[m].mean()) if n else None)
        out["accuracy"].append(float((pred[m] == labels[m]).mean()) if n else None)
        if n:
            ece += n / len(conf) * abs(out["confidence"][-1] - out["accuracy"][-1])
    out["ece"] = ece
    return out
