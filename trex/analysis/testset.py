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


def baseline(probs, labels, classes=None, lo: float = 0.4, hi: float = 0.6, threshold: float = 0.85) -> dict:
    """Both baselines on one classifier's test-set predictions, with what a table needs: the
    classifier's accuracy, the ambiguous examples and the pairs they cover, the confident
    misclassifications, and per-class counts (ambiguous examples a class takes part in;
    misclassifications by true label and by prediction). Indices are ordered for showing: ambiguous
    examples by how even their two classes are, misclassifications most confident first."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    classes = np.arange(p.shape[1]) if classes is None else np.asarray(classes)
    amb_idx, pairs = ambiguous_examples(p, lo, hi, classes)
    top2 = np.sort(p[amb_idx], axis=1)[:, -2:]
    amb_idx = amb_idx[np.argsort(top2[:, 1] - top2[:, 0], kind="stable")]
    inside = (p[amb_idx] >= lo) & (p[amb_idx] <= hi)
    mis = confident_misclassifications(p, y, threshold, classes)
    mis_idx = mis["indices"][np.argsort(-p[mis["indices"]].max(1), kind="stable")]
    return {"n": int(len(p)), "errors": int((classes[p.argmax(1)] != y).sum()), "accuracy": float((classes[p.argmax(1)] == y).mean()) if len(p) else float("nan"),
            "classes": [int(c) for c in classes], "window": (lo, hi), "threshold": threshold,
            "ambiguous": {"indices": amb_idx, "count": int(len(amb_idx)), "pairs": pairs,
                          "by_class": {int(c): int(inside[:, k].sum()) for k, c in enumerate(classes)}},
            "misclassified": {**mis, "indices": mis_idx, "count": int(len(mis_idx))}}


def within_factor(ours: float, paper: float, factor: float = 3.0) -> bool:
    """ours within `factor` of paper either way (paper / factor <= ours <= paper * factor)."""
    return paper / factor <= ours <= paper * factor


def baseline_markdown(result: dict, dataset: str, class_names=None, paper: dict | None = None,
                      factor: float = 3.0, header: str = "") -> str:
    """The baseline as Markdown: our counts beside the paper's (paper_numbers.TESTSET unless `paper`
    is given), whether each is within `factor` of it, the pairs covered and the per-class counts.
    `header`: text (e.g. the command that made it) put under the title."""
    from .paper_numbers import TESTSET
    paper = TESTSET.get(dataset, {}) if paper is None else paper
    amb, mis = result["ambiguous"], result["misclassified"]
    names = {c: (class_names[c] if class_names is not None else str(c)) for c in result["classes"]}
    k = len(result["classes"])
    lo, hi = result["window"]

    def row(what, ours, key):
        ref = paper.get(key)
        if ref is None:
            return f"| {what} | {ours} | - | - | - |"
        ratio = f"{ours / ref:.2f}" if ref else "-"
        ok = "yes" if within_factor(ours, ref, factor) else "**no**"
        return f"| {what} | {ours} | {ref} | {ratio} | {ok} |"

    lines = [f"# Test-set baseline: {dataset} (paper Sec. 4.10)", ""]
    if header:
        lines += [header.rstrip(), ""]
    lines += [f"Classifier test accuracy: **{result['accuracy']:.4f}** on {result['n']:,} test images.", "",
              f"| count | ours | paper | ours / paper | within {factor:g}x |", "| --- | ---: | ---: | ---: | --- |",
              row(f"ambiguous examples (two classes in [{lo:g}, {hi:g}])", amb["count"], "ambiguous"),
              row(f"pairs they cover (of {k * (k - 1) // 2})", len(amb["pairs"]), "ambiguous_pairs"),
              row(f"confident misclassifications (top confidence >= {result['threshold']:g})", mis["count"],
                  "confident_misclassified")]
    if "mislabeled" in paper:
        lines.append(f"| of them mislabeled (by inspection) | not inspected | {paper['mislabeled']} | - | - |")
    lines.append(f"| misclassified at any confidence | {result['errors']} | - | - | - |")
    counted = [(key, ours) for key, ours in (("ambiguous", amb["count"]), ("ambiguous_pairs", len(amb["pairs"])),
                                             ("confident_misclassified", mis["count"])) if key in paper]
    if counted:
        bad = [key for key, ours in counted if not within_factor(ours, paper[key], factor)]
        lines += ["", f"All counts within {factor:g}x of the paper's." if not bad else
                  f"Not within {factor:g}x of the paper's: {', '.join(bad)}."]
    lines += ["", "## Ambiguous pairs", ""]
    if amb["pairs"]:
        lines += ["| pair | examples |", "| --- | ---: |"]
        lines += [f"| {names[i]} v {names[j]} | {n} |" for (i, j), n in
                  sorted(amb["pairs"].items(), key=lambda kv: (-kv[1], kv[0]))]
    else:
        lines.append("none")
    lines += ["", "## Per class", "",
              "| class | ambiguous examples involving it | confidently misclassified, by true label | "
              "confident wrong predictions of it |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {names[c]} | {amb['by_class'][c]} | {mis['by_label'][c]} | {mis['by_prediction'][c]} |"
              for c in result["classes"]]
    return "\n".join(lines) + "\n"


def baseline_figure(images, probs, labels, result: dict, class_names=None, max_ambiguous: int = 32,
                    max_misclassified: int = 40, per_row: int = 8, title: str | None = None):
    """One figure of the examples: the ambiguous ones (most even first) and the confident
    misclassifications (most confident first), each captioned with its label and the top classes'
    confidences. images (N, 1, H, W) or (N, H, W), indexed like probs."""
    from matplotlib.figure import Figure
    imgs, p, y = np.asarray(images), np.asarray(probs), np.asarray(labels)
    classes = np.asarray(result["classes"])
    def short(c):  # "T-shirt/top" -> "T-shirt"
        return class_names[int(c)].split("/")[0][:10] if class_names is not None else str(int(c))
    sections = [(f"ambiguous: {result['ambiguous']['count']} (showing {min(max_ambiguous, result['ambiguous']['count'])})",
                 result["ambiguous"]["indices"][:max_ambiguous], 2),
                (f"confident misclassifications: {result['misclassified']['count']} "
                 f"(showing {min(max_misclassified, result['misclassified']['count'])})",
                 result["misclassified"]["indices"][:max_misclassified], 1)]
    heights = [max(1, -(-len(idx) // per_row)) for _, idx, _ in sections]
    fig = Figure(figsize=(1.0 * per_row, 1.4 * sum(heights) + 0.3 * len(sections) + (0.3 if title else 0)),
                 layout="constrained")
    subs = fig.subfigures(len(sections), 1, height_ratios=[h * 1.4 + 0.3 for h in heights])
    for sub, (label, idx, top), h in zip(subs, sections, heights):
        axes = sub.subplots(h, per_row, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, n in zip(axes.flat, idx):
            img = imgs[n][0] if imgs[n].ndim == 3 and imgs[n].shape[0] == 1 else imgs[n]
            ax.imshow(img, cmap="gray", vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
            order = np.argsort(-p[n])[:top]
            conf = "\n".join(f"{short(classes[k])}: {p[n, k]:.2f}" for k in order)
            ax.set_title(f"label {short(y[n])}\n{conf}", fontsize=5.5, linespacing=1.1)
        if not len(idx):
            axes[0, 0].text(0, 0.5, "none", fontsize=8)
        sub.suptitle(label, fontsize=8, x=0.01, ha="left")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
