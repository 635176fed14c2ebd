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
