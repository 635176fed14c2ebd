"""FID of a generator against real images, with torchmetrics.

Two feature networks:
- in-domain: a trained classifier's penultimate layer (`ClassifierFeatures`); always available;
- Inception-v3 (the paper's Table 1/8 numbers): only when torch-fidelity and its weights are on
  disk; this code never downloads them.

The two numbers are on different scales: only the Inception FID is comparable with the paper.
"""
import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

# torch-fidelity's Inception weights, as cached by torch.hub.load_state_dict_from_url
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_ENV = "TREX_INCEPTION_WEIGHTS"


class ClassifierFeatures(nn.Module):
    """Penultimate features of a classifier with `.features(x)` and `.num_features` (PaperCNN, LeNet).

    Takes what FrechetInceptionDistance hands a custom extractor, unchanged: float images in
    [0, 1] (uint8 in [0, 255] is converted). Stays in eval mode (dropout off) whatever the
    metric's mode, and its parameters are frozen.
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        if not hasattr(classifier, "features") or not hasattr(classifier, "num_features"):
            raise TypeError("classifier needs .features(x) and .num_features (e.g. PaperCNN)")
        self.classifier = classifier.eval()
        self.classifier.requires_grad_(False)
        self.num_features = int(classifier.num_features)

    def train(self, mode: bool = True) -> "ClassifierFeatures":
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        return self.classifier.features(x.float()).flatten(1)


def _device_of(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def generate(generator: nn.Module, n: int, batch_size: int = 500, seed: int = 0) -> torch.Tensor:
    """n images (on the CPU) from z ~ N(0, I) drawn with a private RNG seeded by `seed`."""
    z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    dev = _device_of(generator)
    was_training = generator.training
    generator.eval()
    try:
        return torch.cat([generator(zb.to(dev)).cpu() for zb in z.split(batch_size)])
    finally:
        generator.train(was_training)


def _fid(metric: FrechetInceptionDistance, real: torch.Tensor, fake: torch.Tensor, batch_size: int,
         prep=lambda x: x) -> float:
    dev = _device_of(metric.inception)
    metric = metric.to(dev)
    for xb in real.split(batch_size):
        metric.update(prep(xb.to(dev)), real=True)
    for xb in fake.split(batch_size):
        metric.update(prep(xb.to(dev)), real=False)
    return float(metric.compute())


def fid_between(real_images: torch.Tensor, fake_images: torch.Tensor, feature_net: nn.Module,
                batch_size: int = 500) -> float:
    """FID between two image sets (N, 1, 28, 28) float in [0, 1] in `feature_net`'s feature space.
    `feature_net`: a ClassifierFeatures, or a classifier to wrap in one."""
    if not isinstance(feature_net, ClassifierFeatures):
        feature_net = ClassifierFeatures(feature_net)
    metric = FrechetInceptionDistance(feature=feature_net, normalize=True)
    return _fid(metric, real_images.float(), fake_images.float(), batch_size)


def compute_fid(generator: nn.Module, real_images: torch.Tensor, feature_net: nn.Module,
                n_fake: Optional[int] = None, batch_size: int = 500, seed: int = 0) -> float:
    """FID(real, generator samples) with classifier features; n_fake defaults to len(real_images)."""
    fake = generate(generator, n_fake or real_images.shape[0], batch_size, seed)
    return fid_between(real_images, fake, feature_net, batch_size)


def inception_weights_path(weights_path: Optional[str] = None) -> tuple[Optional[str], str]:
    """(path, "") when torch-fidelity and its Inception weights are available offline, else (None, reason).
    Looks at `weights_path`, then $TREX_INCEPTION_WEIGHTS, then the torch hub cache."""
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        return None, "torch-fidelity is not installed (pip install torch-fidelity), so no Inception FID"
    candidates = [weights_path, os.environ.get(INCEPTION_WEIGHTS_ENV),
                  str(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE)]
    for c in candidates:
        if c and Path(c).is_file():
            return c, ""
    return None, (f"Inception weights {INCEPTION_WEIGHTS_FILE} not found (looked at the argument, "
                  f"${INCEPTION_WEIGHTS_ENV} and {candidates[-1]}); no download attempted")


def inception_fid(generator: nn.Module, real_images: torch.Tensor, n_fake: Optional[int] = None,
                  batch_size: int = 100, seed: int = 0, weights_path: Optional[str] = None,
                  device=None) -> tuple[Optional[float], str]:
    """(Inception-v3 FID, "") as in the paper, or (None, reason) when the weights are not available offline.
    Grayscale images are repeated to 3 channels; torchmetrics resizes them to 299x299."""
    path, reason = inception_weights_path(weights_path)
    if path is None:
        return None, reason
    metric = FrechetInceptionDistance(feature=2048, normalize=True, feature_extractor_weights_path=path)
    if device is not None:
        metric = metric.to(device)
    fake = generate(generator, n_fake or real_images.shape[0], batch_size, seed)
    value = _fid(metric, real_images.float(), fake, batch_size, prep=lambda x: x.expand(-1, 3, -1, -1))
    return value, ""


def fid_report(generator: nn.Module, real_images: torch.Tensor, classifier: nn.Module, dataset: str,
               n_fake: Optional[int] = None, batch_size: int = 500, seed: int = 0,
               inception: bool = True, inception_weights: Optional[str] = None) -> dict:
    """Both FIDs and what they were computed with, ready for a JSON manifest."""
    n_fake = n_fake or real_images.shape[0]
    feats = ClassifierFeatures(classifier)
    report = {
        "fid_classifier": compute_fid(generator, real_images, feats, n_fake, batch_size, seed),
        "features": f"{type(classifier).__name__} penultimate ({feats.num_features}-d), trained on {dataset}",
        "n_real": int(real_images.shape[0]),
        "n_fake": int(n_fake),
        "seed": seed,
    }
    if inception:
        value, note = inception_fid(generator, real_images, n_fake, min(batch_size, 100), seed, inception_weights,
                                    device=_device_of(generator))
    else:
        value, note = None, "Inception FID not requested"
    report["fid_inception"] = value
    report["inception_note"] = note or "Inception-v3 pool features (2048-d), comparable with the paper's Table 1"
    return report
