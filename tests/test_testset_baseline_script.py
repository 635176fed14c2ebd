"""scripts/testset_baseline.py end to end on the first 500 real MNIST test images with the zoo's quick
classifier: what it writes agrees with the classifier's own predictions, read here independently."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, data_root

CKPT = REPO / "zoo" / "quick" / "mnist" / "classifier.ckpt"
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not CKPT.is_file(), reason=f"no trained MNIST classifier at {CKPT}: build it with "
                                 "`python -m lightning_modules.zoo --dataset mnist --profile quick --only classifier`")]


def test_the_script_on_500_mnist_test_images(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    import testset_baseline
    summary = testset_baseline.main(["--dataset", "mnist", "--classifier", str(CKPT), "--limit", "500",
                                     "--out", str(tmp_path), "--data-dir", str(data_root())])
    # the same predictions, made here from torchvision's reader of the same files
    import torchvision
    from lightning_modules.classifier import load_classifier
    net, classes = load_classifier(CKPT)
    ds = torchvision.datasets.MNIST(data_root(), train=False, download=False)
    x, y = ds.data[:500].float().div(255).unsqueeze(1), ds.targets[:500].numpy()
    with torch.no_grad():
        p = net(x).softmax(-1).numpy()
    assert summary["n"] == 500 and summary["accuracy"] == pytest.approx((p.argmax(1) == y).mean())
    assert summary["accuracy"] > 0.95
    top2 = np.sort(p, 1)[:, -2:]
    ambiguous = np.flatnonzero((top2 >= 0.4).all(1) & (top2 <= 0.6).all(1))
    wrong = np.flatnonzero((p.max(1) >= 0.85) & (p.argmax(1) != y))
    assert sorted(summary["ambiguous"]["indices"]) == ambiguous.tolist()
    assert sorted(summary["misclassified"]["indices"]) == wrong.tolist()
    assert summary["misclassified"]["count"] == len(wrong) and len(wrong) < 25  # a 99 % classifier, 500 images
    assert json.loads((tmp_path / "testset_baseline_mnist.json").read_text()) == json.loads(json.dumps(summary))
    md = (tmp_path / "testset_baseline_mnist.md").read_text()
    assert f"Classifier test accuracy: **{summary['accuracy']:.4f}** on 500 test images." in md
    assert "the first 500 mnist test images" in md and "not like for like" in md
    assert f"| confident misclassifications (top confidence >= 0.85) | {len(wrong)} | 84 |" in md
    assert "| ambiguous examples (two classes in [0.4, 0.6]) |" in md and "| 12 |" in md
    from PIL import Image
    with Image.open(tmp_path / "testset_baseline_mnist.png") as im:
        assert im.size[0] > 500 and im.size[1] > 150
