"""Test-set baselines on hand-made predictions whose ambiguous and confidently wrong rows are known."""
import numpy as np

from trex.analysis.testset import ambiguous_examples, confident_misclassifications


def rows(*spec, k=5):
    """One probability row per {class: p} dict, the rest spread evenly over the other classes."""
    out = []
    for d in spec:
        rest = (1 - sum(d.values())) / (k - len(d))
        out.append([d.get(c, rest) for c in range(k)])
    return np.array(out)


def test_ambiguous_examples_and_the_pairs_they_cover():
    p = rows({1: 0.5, 3: 0.45},  # 1 v 3
             {0: 0.4, 2: 0.6},  # both bounds are inclusive: 0 v 2
             {1: 0.55, 3: 0.41},  # 1 v 3 again
             {0: 0.61, 4: 0.39},  # just outside on both sides
             {2: 0.5, 4: 0.2},  # only one class in range
             {0: 0.9})
    idx, pairs = ambiguous_examples(p)
    assert idx.tolist() == [0, 1, 2]
    assert pairs == {(0, 2): 1, (1, 3): 2}
    # a wider window: every class >= 0.3 counts, so a three-way example covers three pairs
    idx, pairs = ambiguous_examples(rows({0: 0.33, 1: 0.33, 2: 0.34}), lo=0.3, hi=0.6)
    assert idx.tolist() == [0] and pairs == {(0, 1): 1, (0, 2): 1, (1, 2): 1}


def test_pairs_are_named_by_the_classifier_classes():
    p = rows({0: 0.5, 2: 0.48}, {3: 0.45, 1: 0.52})
    idx, pairs = ambiguous_examples(p, classes=[0, 1, 3, 6, 9])
    assert pairs == {(0, 3): 1, (1, 6): 1}


def test_confident_misclassifications_counts_by_label_and_prediction():
    p = rows({2: 0.9}, {2: 0.85}, {2: 0.84}, {4: 0.99}, {1: 0.95}, {3: 0.86})
    labels = np.array([0, 0, 0, 4, 3, 1])  # wrong and sure: rows 0, 1 (label 0), 4 (3), 5 (1)
    out = confident_misclassifications(p, labels)
    assert out["indices"].tolist() == [0, 1, 4, 5]  # row 2 is wrong but below 0.85; row 3 is right
    assert out["by_label"] == {0: 2, 1: 1, 2: 0, 3: 1, 4: 0}
    assert out["by_prediction"] == {0: 0, 1: 1, 2: 2, 3: 1, 4: 0}
    assert out["confusion"][0, 2] == 2 and out["confusion"].sum() == 4
    # a subset classifier: outputs over classes [0, 1, 3, 6, 9], labels in the same label space
    out = confident_misclassifications(rows({4: 0.9}, {2: 0.9}), np.array([9, 6]), classes=[0, 1, 3, 6, 9])
    assert out["indices"].tolist() == [1] and out["by_label"][6] == 1 and out["by_prediction"][3] == 1


def test_baseline_orders_the_examples_and_counts_per_class():
    from trex.analysis.testset import baseline
    p = rows({1: 0.5, 3: 0.45},  # ambiguous 1 v 3, gap 0.05
             {0: 0.5, 2: 0.5},  # ambiguous 0 v 2, gap 0: shown first
             {2: 0.9}, {2: 0.99}, {4: 0.95})
    labels = np.array([1, 0, 0, 1, 4])  # wrong and sure: rows 2 (0.9) and 3 (0.99, shown first)
    out = baseline(p, labels)
    assert out["n"] == 5 and out["accuracy"] == 0.6 and out["errors"] == 2  # rows 0 (argmax 1), 1 (tie -> 0) and 4
    assert out["ambiguous"]["indices"].tolist() == [1, 0] and out["ambiguous"]["count"] == 2
    assert out["ambiguous"]["by_class"] == {0: 1, 1: 1, 2: 1, 3: 1, 4: 0}
    assert out["misclassified"]["indices"].tolist() == [3, 2] and out["misclassified"]["count"] == 2
    assert out["misclassified"]["by_label"] == {0: 1, 1: 1, 2: 0, 3: 0, 4: 0}


def test_baseline_markdown_sets_the_counts_beside_the_paper_and_says_whether_they_are_within_3x(tmp_path):
    from trex.analysis.testset import baseline, baseline_figure, baseline_markdown, within_factor
    assert within_factor(4, 12) and within_factor(36, 12) and not within_factor(3.9, 12) and not within_factor(0, 12)
    p = rows({1: 0.5, 3: 0.45}, {2: 0.9}, {4: 0.95}, k=10)
    out = baseline(p, np.array([1, 0, 4]))
    md = baseline_markdown(out, "mnist", header="Made by `x`.")
    assert "Made by `x`." in md and "Classifier test accuracy: **0.6667** on 3 test images." in md
    assert "| ambiguous examples (two classes in [0.4, 0.6]) | 1 | 12 | 0.08 | **no** |" in md
    assert "| pairs they cover (of 45) | 1 | 10 | 0.10 | **no** |" in md
    assert "| confident misclassifications (top confidence >= 0.85) | 1 | 84 | 0.01 | **no** |" in md
    assert "| misclassified at any confidence | 1 | - | - | - |" in md
    assert "| of them mislabeled (by inspection) | not inspected | 60 | - | - |" in md
    assert "Not within 3x of the paper's: ambiguous, ambiguous_pairs, confident_misclassified." in md
    assert "| 1 v 3 | 1 |" in md and "| 0 | 0 | 1 | 0 |" in md  # label 0 confidently taken for a 2
    md = baseline_markdown(out, "fashion", paper={"ambiguous": 2, "ambiguous_pairs": 1, "confident_misclassified": 1},
                           class_names=[f"c{i}" for i in range(10)])
    assert "All counts within 3x of the paper's." in md and "| c1 v c3 | 1 |" in md
    images = np.random.default_rng(0).integers(0, 255, (3, 1, 28, 28)).astype(np.uint8)
    fig = baseline_figure(images, p, np.array([1, 0, 4]), out)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["label 1\n1: 0.50\n3: 0.45", "label 0\n2: 0.90"]
    fig.savefig(tmp_path / "examples.png", dpi=60)
