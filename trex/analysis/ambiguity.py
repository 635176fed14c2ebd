"""Ambiguous pairs: was an i-vs-j target found, and the K × K matrices of the paper's Figs. 5 and 27.

One definition of "found" for the whole suite (bench/bench_sweep.py calls `pair_quality` too): a
pair is found when both mean confidences lie in [0.4, 0.6], at least 90 % of the draws are within
0.1 of the target and the confidences' R-hat is at most 1.1 (chains that agree on where the level
set is; a single well-placed chain is not enough).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from trex.diagnostics import summarize

MEAN_RANGE = (0.4, 0.6)  # both mean confidences inside, as the paper's test-set baseline
MIN_WITHIN = 0.9  # share of draws within 0.1 of the target
MAX_RHAT = 1.1  # confidence R-hat


def pair_of(res) -> tuple[int, int]:
    """The two class labels an ambiguous target asks for (the nonzero entries of `ideal`)."""
    classes = list(res.meta.get("classes", range(len(res.ideal))))
    named = [int(c) for c, v in zip(classes, res.ideal) if v > 0]
    if len(named) != 2:
        raise ValueError(f"not a pair target: ideal {np.asarray(res.ideal).tolist()} names classes {named}")
    return named[0], named[1]


def pair_quality(res) -> dict:
    """Mean confidences, share within 0.1, confidence R-hat / ESS and the verdict for one pair's SampleSet.

    within_0.1 is the runner's `near_target_0.1` (every class within 0.1 of the ideal: both pair
    confidences within 0.1 of 0.5, and so every other class below 0.1); it is recomputed the same way
    when the diagnostics are missing, so the number never depends on whether they were stored.
    """
    i, j = pair_of(res)
    classes = list(res.meta.get("classes", range(len(res.ideal))))
    cols = [classes.index(i), classes.index(j)]
    p = res.probs.reshape(-1, res.probs.shape[-1])
    mi, mj = float(p[:, cols[0]].mean()), float(p[:, cols[1]].mean())
    d = res.diagnostics
    within = d.get("near_target_0.1")
    within = res.near_target(0.1) if within is None else float(within)
    if "confidence_rhat_max" in d and "confidence_ess_bulk_min" in d:
        rhat, ess = float(d["confidence_rhat_max"]), float(d["confidence_ess_bulk_min"])
    else:
        conf = summarize(res.probs[:, :, cols])
        rhat, ess = conf["rhat_max"], conf["ess_min"]
    lo, hi = MEAN_RANGE
    found = bool(lo <= mi <= hi and lo <= mj <= hi and within >= MIN_WITHIN and rhat <= MAX_RHAT)
    return {"pair": (i, j), "mean_i": mi, "mean_j": mj, "within_0.1": within, "conf_rhat": rhat,
            "conf_ess": ess, "found": found}


def count_found(rows) -> int:
    return sum(bool(r["found"]) for r in rows)


def confidence_matrix(rows, k: int, found_only: bool = True) -> np.ndarray:
    """K × K mean confidences over class labels 0..k-1, NaN where no (found) pair: M[r, c] is the mean
    confidence in class c of the r-vs-c run, the paper's Fig. 27 reading (for 9 v 0: class 0's 0.477
    at row 9, column 0; class 9's 0.474 at row 0, column 9)."""
    m = np.full((k, k), np.nan)
    for r in rows:
        if found_only and not r["found"]:
            continue
        i, j = r["pair"]
        m[i, j], m[j, i] = r["mean_j"], r["mean_i"]
    return m


def confidence_matrix_figure(matrix: np.ndarray, class_names=None, title="mean confidence of found pairs") -> Figure:
    """Heat map of `confidence_matrix`, each cell written out; blank where the pair was not found."""
    k = matrix.shape[0]
    names = class_names or [str(c) for c in range(k)]
    fig = Figure(figsize=(0.55 * k + 1.8, 0.55 * k + 1.2))
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.3, vmax=0.7, cmap="coolwarm")
    ax.set_xticks(range(k), names, rotation=45 if class_names else 0)
    ax.set_yticks(range(k), names)
    for r in range(k):
        for c in range(k):
            if not np.isnan(matrix[r, c]):
                ax.text(c, r, f"{matrix[r, c]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="confidence in the column's class")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def representative(res) -> int:
    """Flat index of the draw whose pair confidences are closest to (0.5, 0.5)."""
    classes = list(res.meta.get("classes", range(len(res.ideal))))
    cols = [classes.index(c) for c in pair_of(res)]
    p = res.probs.reshape(-1, res.probs.shape[-1])[:, cols]
    return int(np.argmin(((p - 0.5) ** 2).sum(-1)))


def ambiguity_matrix_figure(sample_sets, k: int | None = None, class_names=None,
                            title="ambiguous pairs found") -> Figure:
    """K × K grid of images (the paper's Fig. 5): above the diagonal, one representative draw of
    each found pair (closest to (0.5, 0.5)) titled with its share of typical draws when scored;
    below it, the pair's two mean confidences; empty where the pair was not found. Classes are the
    labels 0..k-1 (`class_names` indexed by label)."""
    sets = list(sample_sets)
    k = k or len(sets[0].meta.get("classes", sets[0].ideal))
    names = class_names or [str(c) for c in range(k)]
    fig = Figure(figsize=(0.8 * k + 0.6, 0.8 * k + 0.8))
    axes = fig.subplots(k, k, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_facecolor("0.93")
    for c in range(k):
        axes[0, c].set_title(names[c], fontsize=8)
        axes[c, 0].set_ylabel(names[c], fontsize=8, rotation=0, labelpad=10, va="center")
    rows = [pair_quality(s) for s in sets]
    for res, q in zip(sets, rows):
        if not q["found"]:
            continue
        i, j = sorted(q["pair"])
        up, low = axes[i, j], axes[j, i]
        a, b = q["pair"]
        low.text(0.5, 0.5, f"{names[a]}: {q['mean_i']:.2f}\n{names[b]}: {q['mean_j']:.2f}", ha="center",
                 va="center", fontsize=7, transform=low.transAxes)
        if res.images is not None:
            img = res.images.reshape(-1, *res.images.shape[2:])[representative(res)]
            up.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=255)
        share = res.typical_share()
        if share is not None:
            # red when most of the pair's draws look unlike real data
            up.set_xlabel(f"typ {share:.0%}", fontsize=6, labelpad=1, color="k" if share >= 0.5 else "tab:red")
    fig.suptitle(f"{title}: {count_found(rows)} of {len(sets)} pairs", fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=0.6, w_pad=0.1, rect=(0, 0, 1, 0.97))  # room for the title
    return fig
