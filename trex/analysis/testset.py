"""The test-set baselines Bayes-TrEx is set beside (paper Sec. 4.10): look for the same kind of
example among a classifier's test-set predictions instead of sampling it.

Inputs are plain arrays: probabilities (N, K) over `classes` (labels 0..K-1 unless given) and the
true labels (N,). Paper: 12 MNIST / 162 Fashion-MNIST ambiguous test examples over 10 / 12 pairs;
84 / 802 confident (>= 0.85) misclassifications (trex.analysis.paper_numbers.TESTSET).
"""
from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np


def ambiguous_examples(probs, lo: float = 0.4, hi: float = 0.6, classes=None) -> tuple[np.ndarray, dict]:
    """Examples with at least two classes whose confidence lies in [lo, hi]: their indices, and
    {(i, j): count} over the pairs (i < j) they cover. With lo > 1/3 an example has at most one pair."""
    p = np.asarray(probs)
    classes = np.arange(p.shape[1]) if classes is None else np.asarray(classes)
    inside = (p >= lo) & (p <= hi)
    idx = np.flatnonzero(inside.sum(1) >= 2)
    pairs = Counter()
    for n in idx:
        pairs.update(combinations(sorted(int(c) for c in classes[inside[n]]), 2))
    return idx, dict(sorted(pairs.items()))


def confident_misclassifications(probs, labels, threshold: float = 0.85, classes=None) -> dict:
    """Examples the classifier gets wrong with top confidence >= threshold: their indices, counts per
    true label and per predicted class (the paper tallies by label: "all of the labeled 2s ..."), and
    the label × prediction confusion counts (K, K) over `classes` in order."""
    p, y = np.asarray(probs), np.asarray(labels)
    classes = np.arange(p.shape[1]) if classes is None else np.asarray(classes)
    pred = classes[p.argmax(1)]
    idx = np.flatnonzero((p.max(1) >= threshold) & (pred != y))
    pos = {int(c): k for k, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    for n in idx:
        confusion[pos[int(y[n])], pos[int(pred[n])]] += 1
    return {"indices": idx,
            "by_label": {int(c): int(confusion[k].sum()) for k, c in enumerate(classes)},
            "by_prediction": {int(c): int(confusion[:, k].sum()) for k, c in enumerate(classes)},
            "confusion": confusion}
