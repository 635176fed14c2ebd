"""The confidence table on hand-made runs whose per-seed means and stds are known exactly."""
import numpy as np
import pytest

from trex.analysis.paper_numbers import CONFIDENCE, confidence_entry, describe
from trex.analysis.table import COLUMNS, confidence_table
from trex.results import SampleSet
from trex.summary import markdown_table

K = 10


def run(target, seed, values: dict, c=2, s=50, **meta):
    """A run whose draws give class k the values m - d and m + d in equal numbers for each
    {k: (m, d)}: mean m and std d exactly. The rest of the mass is spread over the other classes."""
    alt = np.tile([-1.0, 1.0], c * s // 2).reshape(c, s)
    probs = np.zeros((c, s, K))
    for k, (m, d) in values.items():
        probs[..., k] = m + d * alt
    rest = [k for k in range(K) if k not in values]
    probs[..., rest] = ((1 - probs.sum(-1)) / len(rest))[..., None]
    ideal = np.zeros(K)
    ideal[list(values)] = 1 / len(values)
    return SampleSet(latents=np.zeros((c, s, 2)), probs=probs, logdensity=np.zeros((c, s)),
                     accepted=np.ones((c, s), bool), divergent=np.zeros((c, s), bool), step_size=np.ones(c),
                     ideal=ideal, meta={"target": target, "classes": list(range(K)), "seed": seed, **meta})


def test_per_seed_and_between_seed_numbers_are_exact():
    runs = [run("p:8=0.6,9=0.4", 2, {8: (0.62, 0.03), 9: (0.36, 0.01)}),
            run("p:8=0.6,9=0.4", 0, {8: (0.58, 0.04), 9: (0.37, 0.04)}),
            run("p:8=0.6,9=0.4", 1, {8: (0.60, 0.02), 9: (0.38, 0.04)})]
    (row,) = confidence_table({"mnist/interpolation": runs})
    assert row["target"] == "p:8=0.6,9=0.4" and row["classes"] == "8, 9" and row["seeds"] == 3
    assert row["draws"] == 300
    assert row["mean"] == pytest.approx([0.60, 0.37]) and row["std"] == pytest.approx([0.03, 0.03])
    assert row["spread"] == pytest.approx([0.02, 0.01])  # std over seeds, ddof 1
    assert row["confidence"] == "0.600 ± 0.030, 0.370 ± 0.030" and row["seed_spread"] == "0.020, 0.010"
    assert row["per_seed"].startswith("0.580 ± 0.040, 0.370 ± 0.040 (seed 0); 0.600 ± 0.020")  # sorted by seed
    assert row["paper"] == "0.581 ± 0.04, 0.374 ± 0.04 (Tables 2, 10)"


def test_targets_are_grouped_and_matched_to_the_paper():
    groups = {
        "mnist/high_confidence": [run("class:3", 0, {3: (0.999, 0.004)}), run("class:3", 1, {3: (0.997, 0.006)}),
                                  run("class:5", 0, {5: (0.99, 0.01)})],
        "fashion/failures": [run("class:1", 0, {1: (0.5, 0.2)})],
        "scenes": [run("class:5", 0, {5: (0.95, 0.02)}, scene_target={"name": "five_spheres"})],
        "mnist/ambiguous": [run("ambiguous:2,4", 0, {2: (0.5, 0.02), 4: (0.49, 0.02)})],
    }
    rows = confidence_table(groups)
    assert [(r["experiment"], r["target"], r["seeds"]) for r in rows] == [
        ("mnist/high_confidence", "class:3", 2), ("mnist/high_confidence", "class:5", 1),
        ("fashion/failures", "class:1", 1), ("scenes", "five_spheres", 1), ("mnist/ambiguous", "ambiguous:2,4", 1)]
    assert rows[0]["mean"] == pytest.approx([0.998]) and rows[0]["std"] == pytest.approx([0.005])
    assert rows[1]["spread"] is None and rows[1]["seed_spread"] == "-"
    assert rows[0]["paper"] == "0.998-0.999 over classes, std ≤ 0.008 (Table 9)"
    assert rows[2]["paper"] == "sampling failure (Table 9)"  # Fashion trousers
    assert rows[3]["paper"] == "0.943 ± 0.02 (Table 9)"
    assert rows[4]["paper"] == "-"  # the notes give no number for 2 v 4: none is made up
    text = markdown_table(rows, COLUMNS)
    assert text.count("\n") == len(rows) + 1 and "| scenes | five_spheres | 5 | 1 | 100 | 0.950 ± 0.020 |" in text


def test_every_paper_entry_can_be_printed():
    for experiment, table in CONFIDENCE.items():
        for target in table:
            assert describe(confidence_entry(experiment, target)).endswith(")")
    assert confidence_entry("fashion/failures", "class:4")["range"] == (0.886, 0.971)
    assert describe(confidence_entry("mnist/failures", "class:0")) == "0.953-0.990 over classes (Table 9)"
    assert confidence_entry("mnist/ambiguous", "ambiguous:0,3") is None
