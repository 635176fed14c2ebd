"""End-of-training report for generators: FID on held-out images and which classes they draw."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from lightning_modules.classifier import load_classifier
from lightning_modules.fid import fid_report, generate


def class_probs(classifier, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """The classifier's softmax probabilities (N, K) for float images, in batches."""
    with torch.no_grad():
        return torch.cat([classifier(x).softmax(-1) for x in images.split(batch)])


def predict(classifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's output index (argmax) for each image."""
    return class_probs(classifier, images).argmax(-1)


def label_shares(classifier, images, classes) -> dict:
    """Share of `images` the classifier assigns to each original label."""
    pred = predict(classifier, images)
    counts = torch.bincount(pred, minlength=len(classes)).float() / len(images)
    return {int(c): round(float(v), 5) for c, v in zip(classes, counts)}


def class_shares(generator, classifier, classes, n: int = 10_000, seed: int = 1) -> dict:
    """Share of n generated images the classifier assigns to each original label."""
    return label_shares(classifier, generate(generator, n, seed=seed), classes)


def classifier_stamp(path) -> dict:
    """Which classifier scored a generator: its path and a hash of its weights file, so that a zoo
    whose classifier was retrained can tell which scores are stale."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return {"checkpoint": str(path), "sha256": digest}


def generator_report(generator, datamodule, fid_classifier: str | None, logger=None) -> dict:
    """FID with the full-data classifier's features, the class mix of generated images, and for
    leave-one-class-out / novel-class generators the share of classes they should not draw.
    `generator`: the bare z -> image module (e.g. `module.generator()` or `load_generator(path)`)."""
    if not fid_classifier or not Path(fid_classifier).is_file():
        return {"skipped": f"no feature classifier (fid_classifier={fid_classifier!r}); train "
                           f"experiment=<dataset>/classifier first and pass its checkpoint"}
    classifier, classes = load_classifier(fid_classifier)
    if len(classes) != 10:
        raise ValueError(f"the FID feature classifier must cover all classes, it has {classes}")
    datamodule.setup("test")
    real = datamodule.test_set.tensors[0]
    gen = generator.cpu()
    report = fid_report(gen, real, classifier, datamodule.dataset)
    report["judge"] = classifier_stamp(fid_classifier)
    shares = class_shares(gen, classifier, classes)
    report["class_shares"] = shares
    trained = set(datamodule.classes)

    def outside(shares):
        return round(sum(v for c, v in shares.items() if c not in trained), 5)

    report["share_outside_training_classes"] = outside(shares)
    # its floor: real held-out images of the training classes that the classifier itself puts
    # outside them (a perfect generator of the training data scores this too)
    report["real_share_outside_training_classes"] = outside(label_shares(classifier, real, classes))
    if logger is not None and hasattr(logger, "log_metrics"):
        logger.log_metrics({"fid/classifier_features": report["fid_classifier"],
                            "gen/share_outside_training_classes": report["share_outside_training_classes"],
                            "gen/real_share_outside_training_classes":
                                report["real_share_outside_training_classes"]})
    return report
