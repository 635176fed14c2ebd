"""Targets: statistics u and observed values u* on hand-made probability vectors; validation errors."""
import pytest
import torch

from trex.targets import (Ambiguous, AmbiguousSubset, Confidence, HighConfidence, TargetError,
                          UniformAmbiguity, interpolation, parse)

K = list(range(10))


def probs(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def onehot(i, v=1.0, rest=None):
    p = [0.0] * 10
    p[i] = v
    for j, w in (rest or {}).items():
        p[j] = w
    return p


def test_high_confidence_statistic():
    t = HighConfidence(4).bind(K)
    p = probs(onehot(4), onehot(4, 0.7, {1: 0.3}))
    assert t.statistic(p).squeeze(-1).tolist() == pytest.approx([1.0, 0.7])
    assert t.observed(p).tolist() == [1.0]
    assert t.distance(p).tolist() == pytest.approx([0.0, 0.3])


def test_ambiguous_statistics_match_eqs_7_to_9():
    t = Ambiguous(1, 7).bind(K)
    p = probs(onehot(1, 0.5, {7: 0.5}), onehot(1, 0.6, {7: 0.3, 2: 0.1}), onehot(1, 0.9, {2: 0.1}))
    u = t.statistic(p)
    # u1 = |f1 - f7|, u2 = min(f1, f7) - max_{k != 1,7} f_k
    assert u[:, 0].tolist() == pytest.approx([0.0, 0.3, 0.9])
    assert u[:, 1].tolist() == pytest.approx([0.5, 0.2, -0.1])
    assert t.observed(p).tolist() == [0.0, 0.5]
    assert t.distance(p)[0] == pytest.approx(0.0)


def test_subset_ambiguity_generalises_pairs():
    t = AmbiguousSubset((1, 4, 7)).bind(K)
    third = 1 / 3
    p = probs(onehot(1, third, {4: third, 7: third}))
    assert t.statistic(p)[0].tolist() == pytest.approx([0.0, third])
    assert t.observed(p).tolist() == pytest.approx([0.0, third])
    pair = AmbiguousSubset((1, 7)).bind(K)
    q = probs(onehot(1, 0.6, {7: 0.3, 2: 0.1}))
    assert torch.allclose(pair.statistic(q), Ambiguous(1, 7).bind(K).statistic(q))


def test_uniform_ambiguity():
    t = UniformAmbiguity().bind(K)
    p = probs([0.1] * 10, onehot(3))
    assert t.statistic(p).squeeze(-1).tolist() == pytest.approx([0.0, 1.0])
    assert t.observed(p).tolist() == [0.0]
    assert t.ideal().tolist() == pytest.approx([0.1] * 10)


def test_confidence_vector_and_interpolation():
    t = Confidence({8: 0.6, 9: 0.4}).bind(K)
    p = probs(onehot(8, 0.6, {9: 0.4}))
    assert torch.allclose(t.statistic(p), p)
    assert t.observed(p).tolist() == pytest.approx(onehot(8, 0.6, {9: 0.4}))
    steps = interpolation(8, 9, 11)
    assert len(steps) == 11 and str(steps[0]) == "p:8=1,9=0" and str(steps[-1]) == "p:8=0,9=1"
    assert dict(steps[4].p) == pytest.approx({8: 0.6, 9: 0.4})


def test_subset_classifier_maps_labels_to_columns():
    # a classifier over original labels {0,1,3,6,9}: label 6 is output column 3
    t = HighConfidence(6).bind([0, 1, 3, 6, 9])
    p = probs([0.0, 0.0, 0.1, 0.9, 0.0])
    assert t.statistic(p).item() == pytest.approx(0.9)
    with pytest.raises(TargetError, match="class 2 is not among"):
        HighConfidence(2).bind([0, 1, 3, 6, 9])


@pytest.mark.parametrize("spec,kind", [("class:4", HighConfidence), ("ambiguous:1,7", AmbiguousSubset),
                                       ("ambiguous:1,4,7", AmbiguousSubset), ("uniform", UniformAmbiguity),
                                       ("p:8=0.6,9=0.4", Confidence)])
def test_parse_round_trip(spec, kind):
    t = parse(spec)
    assert isinstance(t, kind) and str(t) == spec and parse(str(t)) == t


@pytest.mark.parametrize("spec,message", [
    ("p:8=0.6,9=0.3", "off the probability simplex"),
    ("p:8=1.2,9=-0.2", "off the probability simplex"),
    ("ambiguous:1,1", "with itself|and itself"),
    ("ambiguous:", "cannot read target"),
    ("class:x", "cannot read target"),
    ("nonsense", "cannot read target"),
])
def test_invalid_targets_fail_at_once(spec, message):
    with pytest.raises(TargetError, match=message):
        parse(spec)


def test_out_of_range_and_empty_subsets():
    with pytest.raises(TargetError, match="class 12 is not among"):
        parse("class:12").bind(K)
    with pytest.raises(TargetError, match="at least two"):
        AmbiguousSubset(())
    with pytest.raises(TargetError, match="uniform"):
        AmbiguousSubset(tuple(K)).bind(K)
    with pytest.raises(TargetError, match="not bound"):
        HighConfidence(1).statistic(probs(onehot(1)))
