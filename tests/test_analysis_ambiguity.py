"""Ambiguous pairs: the "found" rule on hand-made sample sets, the confidence matrix, the image grid."""
import sys
from pathlib import Path

import numpy as np
import pytest

from trex.analysis.ambiguity import (ambiguity_matrix_figure, confidence_matrix, confidence_matrix_figure,
                                     count_found, pair_quality, representative)
from trex.results import SampleSet

K = 10


def pair_set(pi, pj, i=1, j=7, classes=None, diagnostics=None, images=False, typicality=None):
    """A SampleSet for target i vs j whose draws have confidences pi, pj (C, S) in classes i and j;
    the rest of each draw's mass is spread evenly over the other classes."""
    classes = list(classes or range(K))
    c, s = pi.shape
    k = len(classes)
    probs = np.repeat(((1 - pi - pj) / (k - 2))[..., None], k, axis=-1)
    probs[..., classes.index(i)], probs[..., classes.index(j)] = pi, pj
    ideal = np.zeros(k)
    ideal[[classes.index(i), classes.index(j)]] = 0.5
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (c, s, 1, 8, 8), dtype=np.uint8) if images else None
    meta = {"target": f"ambiguous:{i},{j}", "classes": classes}
    if diagnostics is not None:
        meta["diagnostics"] = diagnostics
    return SampleSet(latents=rng.normal(size=(c, s, 2)), probs=probs, logdensity=np.zeros((c, s)),
                     accepted=np.ones((c, s), bool), divergent=np.zeros((c, s), bool), step_size=np.ones(c),
                     ideal=ideal, images=imgs, typicality=typicality, meta=meta)


def balanced(c=4, s=200, a=0.02, seed=0):
    """Confidences 0.5 ± a in equal numbers per chain, shuffled: means exactly 0.5, R-hat ~ 1."""
    rng = np.random.default_rng(seed)
    d = np.stack([rng.permutation(np.repeat([a, -a], s // 2)) for _ in range(c)])
    return 0.5 + d, 0.5 - d


def test_well_mixed_pair_is_found_with_exact_means():
    pi, pj = balanced()
    q = pair_quality(pair_set(pi, pj))
    assert q["pair"] == (1, 7) and q["found"]
    assert q["mean_i"] == pytest.approx(0.5, abs=1e-12) and q["mean_j"] == pytest.approx(0.5, abs=1e-12)
    assert q["within_0.1"] == 1.0 and q["conf_rhat"] < 1.05 and q["conf_ess"] > 100


def test_each_clause_of_the_rule_can_fail_alone():
    pi, pj = balanced()
    ok = {"near_target_0.1": 0.9, "confidence_rhat_max": 1.1, "confidence_ess_bulk_min": 50.0}
    assert pair_quality(pair_set(pi, pj, diagnostics=ok))["found"]  # every bound is inclusive
    # the stored diagnostics are used when present
    assert not pair_quality(pair_set(pi, pj, diagnostics={**ok, "near_target_0.1": 0.89}))["found"]
    assert not pair_quality(pair_set(pi, pj, diagnostics={**ok, "confidence_rhat_max": 1.11}))["found"]
    q = pair_quality(pair_set(pi + 0.11, pj - 0.11, diagnostics=ok))  # means 0.61 / 0.39, all else fine
    assert q["mean_i"] == pytest.approx(0.61) and not q["found"]


def test_draws_away_from_the_target_and_disagreeing_chains_are_not_found():
    # half the draws at (0.7, 0.3): means (0.6, 0.4) pass, but only half are within 0.1
    pi = np.where(np.arange(200) % 2, 0.5, 0.7)[None].repeat(4, 0)
    q = pair_quality(pair_set(pi, 1 - pi))
    assert q["within_0.1"] == 0.5 and q["mean_i"] == pytest.approx(0.6) and not q["found"]
    # two chains at (0.45, 0.55), two at (0.55, 0.45): all within 0.1, means 0.5, but the chains disagree
    rng = np.random.default_rng(1)
    pi = np.array([0.45, 0.45, 0.55, 0.55])[:, None] + rng.normal(0, 0.005, (4, 200))
    q = pair_quality(pair_set(pi, 1 - pi))
    assert q["within_0.1"] == 1.0 and q["mean_i"] == pytest.approx(0.5, abs=0.002)
    assert q["conf_rhat"] > 1.5 and not q["found"]  # rank-normalised R-hat of split chains


def test_pair_is_read_through_the_classifier_classes():
    pi, pj = balanced()
    q = pair_quality(pair_set(pi + 0.05, pj - 0.1, i=3, j=9, classes=[0, 1, 3, 6, 9]))
    assert q["pair"] == (3, 9) and q["mean_i"] == pytest.approx(0.55) and q["mean_j"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="not a pair"):
        res = pair_set(pi, pj)
        res.ideal = np.eye(K)[4]
        pair_quality(res)


def test_confidence_matrix_follows_the_paper_reading_and_skips_unfound_pairs():
    rows = [{"pair": (9, 0), "mean_i": 0.474, "mean_j": 0.477, "found": True},
            {"pair": (1, 7), "mean_i": 0.45, "mean_j": 0.52, "found": False}]
    m = confidence_matrix(rows, K)
    assert m[9, 0] == 0.477 and m[0, 9] == 0.474  # Fig. 27: 9 v 0 has 0.477 for class 0 bottom left
    assert np.isnan(m[1, 7]) and np.isnan(m[7, 1]) and np.isnan(m).sum() == K * K - 2
    assert confidence_matrix(rows, K, found_only=False)[7, 1] == 0.45
    assert count_found(rows) == 1


def test_representative_is_the_draw_closest_to_half_half():
    pi, pj = balanced(c=2, s=10, a=0.05)
    pi[1, 3], pj[1, 3] = 0.501, 0.499
    assert representative(pair_set(pi, pj)) == 1 * 10 + 3


def test_figures_put_an_image_in_found_cells_only(tmp_path):
    pi, pj = balanced(c=2, s=20)
    typ = np.where(np.arange(40).reshape(2, 20) < 30, 0.5, 2.0)  # 75 % typical
    sets = [pair_set(pi, pj, i=1, j=7, images=True, typicality=typ),
            pair_set(pi, pj, i=0, j=3, images=True),
            pair_set(pi + 0.2, pj - 0.2, i=2, j=5, images=True)]  # means 0.7 / 0.3: not found
    fig = ambiguity_matrix_figure(sets, k=K)
    axes = np.array(fig.axes).reshape(K, K)
    with_image = {(r, c) for r in range(K) for c in range(K) if axes[r, c].images}
    assert with_image == {(1, 7), (0, 3)}
    assert axes[1, 7].get_xlabel() == "typ 75%" and axes[0, 3].get_xlabel() == ""
    assert [t.get_text() for t in axes[7, 1].texts] == ["1: 0.50\n7: 0.50"] and not axes[5, 2].texts
    assert "2 of 3 pairs" in fig._suptitle.get_text()
    fig.savefig(tmp_path / "grid.png", dpi=60)
    m = confidence_matrix([pair_quality(s) for s in sets], K)
    fig = confidence_matrix_figure(m)
    assert len(fig.axes[0].texts) == 4  # two found pairs, two cells each
    fig.savefig(tmp_path / "matrix.png", dpi=60)


def test_bench_sweep_rows_use_the_same_rule():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_sweep
    pi, pj = balanced()
    diag = {"near_target_0.1": 0.95, "confidence_rhat_max": 1.02, "confidence_ess_bulk_min": 321.04,
            "accept_prob_mean": 0.853, "stuck_chains": [2]}
    row = bench_sweep.quality(pair_set(pi, pj, diagnostics=diag))
    assert row == {"pair": "1 vs 7", "mean_i": 0.5, "mean_j": 0.5, "within_0.1": 0.95, "conf_rhat": 1.02,
                   "conf_ess": 321.0, "accept": 0.85, "stuck": 1, "exact_fallback": False, "found": True}
    assert not bench_sweep.quality(pair_set(pi, pj, diagnostics={**diag, "confidence_rhat_max": 1.2}))["found"]


def test_bench_sweep_rows_say_whether_the_target_fell_back_to_exact_gradients():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_sweep
    pi, pj = balanced()
    res = pair_set(pi, pj, diagnostics={"accept_prob_mean": 0.3, "stuck_chains": []})
    res.meta["fallback"] = {"at_step": 120, "targets": [3], "exact_gradients": True}
    assert bench_sweep.quality(res)["exact_fallback"] is True
    res.meta["fallback"]["exact_gradients"] = False
    assert bench_sweep.quality(res)["exact_fallback"] is False
