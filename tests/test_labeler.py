"""The independent labeler: only samples every labeler agrees on count, and the calibration numbers."""
import numpy as np
import pytest
import torch

from trex.analysis.labeler import accuracy_table, ensemble_vote, reliability


def _onehot(labels, k=4):
    return np.eye(k)[labels] * 0.7 + 0.3 / k


def test_agreement_filter_keeps_only_unanimous_samples():
    a = _onehot([0, 1, 2, 3, 3, 1])
    b = _onehot([0, 1, 2, 2, 3, 1])
    c = _onehot([0, 2, 2, 3, 3, 1])
    labels, agree = ensemble_vote([a, b, c])
    assert agree.tolist() == [True, False, True, False, True, True]
    assert labels.tolist() == [0, -1, 2, -1, 3, 1]
    # a classifier drew these to be confident in: 0, 1, 2, 3, 1, 2
    rows = accuracy_table(np.array([0, 1, 2, 3, 1, 2]), labels, agree, classes=[0, 1, 2, 3])
    assert rows[1] == {"draws": 2, "kept": 1, "correct": 0, "accuracy": 0.0}  # sample 4: labelers say 3
    assert rows[3] == {"draws": 1, "kept": 0, "correct": 0, "accuracy": None}  # the only draw was dropped
    assert rows["all"] == {"draws": 6, "kept": 4, "correct": 2, "accuracy": 0.5}
    with pytest.raises(ValueError, match="same N and K"):
        ensemble_vote([a, b[:3]])


def test_reliability_ece_matches_torchmetrics():
    from torchmetrics.classification import MulticlassCalibrationError
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (2000, 10))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y = np.where(rng.random(2000) < 0.6, probs.argmax(-1), rng.integers(0, 10, 2000))
    ours = reliability(probs, y, n_bins=15)
    theirs = MulticlassCalibrationError(num_classes=10, n_bins=15)(torch.tensor(probs), torch.tensor(y)).item()
    assert ours["ece"] == pytest.approx(theirs, abs=1e-5) and sum(ours["count"]) == 2000
