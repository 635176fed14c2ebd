"""What sample.py samples against: checkpoints resolved, read safely, checked against each other and
against the config before anything is built, then a start-up check on a few real forward passes.

Every mistake here is a `UserError` whose message names the file, its role and the fix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

import trex
from lightning_modules.classifier import build_classifier, classifier_info
from lightning_modules.loading import build_generator, generator_class, generator_info
from lightning_modules.zoo import resolve_checkpoint, zoo_of
from trex.errors import UserError
from trex.safeload import read, weights_digest


@dataclass
class Models:
    classifier: nn.Module
    classes: list
    distribution: trex.LatentGaussian
    paths: dict  # role -> checkpoint path
    digests: dict  # role -> weights_digest of its checkpoint: which models a run folder's draws came from


def _zoo(cfg):
    return zoo_of(cfg)


def check_datasets(cfg, recorded: dict) -> None:
    """Refuse models recorded on another dataset than data.dataset, unless the config says it is meant
    (`cross_dataset: true`, e.g. a classifier trained on SVHN probed with MNIST-like images)."""
    want = cfg.data.dataset
    other = {role: d for role, d in recorded.items() if d and d != want}
    if other and not cfg.get("cross_dataset", False):
        said = ", ".join(f"the {role} was trained on {d!r}" for role, d in other.items())
        raise UserError(f"{said}, but data.dataset is {want!r}. Use {want} models or set data.dataset to theirs; "
                        f"if the mix is meant (domain adaptation), set cross_dataset=true")


def check_labels(classes, dataset: str, path) -> None:
    """A classifier's labels must be labels of the dataset it is probed on."""
    from datamodules.sources import CLASS_NAMES
    n = len(CLASS_NAMES.get(dataset, ())) or None
    odd = sorted(c for c in classes if n is not None and not 0 <= c < n)
    if odd:
        raise UserError(f"the classifier {path} predicts labels {odd[0]}-{odd[-1]}, but {dataset} has 0-{n - 1}; "
                        f"use a classifier trained on {dataset} (or its class subset)")


def load_models(cfg, device: torch.device) -> Models:
    paths = {"classifier": resolve_checkpoint(cfg.classifier, *_zoo(cfg), role="classifier"),
             "generator": resolve_checkpoint(cfg.generator, *_zoo(cfg), role="generator")}
    ck_c = read(paths["classifier"], "classifier", device)
    ck_g = read(paths["generator"], "generator", device)
    info_c = classifier_info(ck_c, paths["classifier"])  # metadata first: kind, classes, dataset
    generator_class(ck_g, paths["generator"])
    check_datasets(cfg, {"classifier": info_c["dataset"], "generator": generator_info(ck_g)["dataset"]})
    check_labels(info_c["classes"], cfg.data.dataset, paths["classifier"])
    classifier, classes = build_classifier(ck_c, paths["classifier"])
    dist = trex.LatentGaussian(build_generator(ck_g, paths["generator"]).to(device))
    startup_check(dist, classifier.to(device), classes, paths)
    return Models(classifier, classes, dist, paths,
                  {"classifier": weights_digest(ck_c), "generator": weights_digest(ck_g)})


@torch.no_grad()
def startup_check(dist, classifier, classes, paths, n: int = 8) -> None:
    """A few prior draws through both models: the images must be finite and readable by the classifier,
    its outputs finite and one per class. A broken model fails here, not as 'nan ± nan' at the end."""
    x = dist.decode(dist.sample_prior(n, torch.Generator(dist.device).manual_seed(0)))
    if not torch.isfinite(x).all():
        raise UserError(f"the generator {paths['generator']} outputs NaN or Inf images for ordinary latents "
                        f"(z ~ N(0, I)); its weights are broken: train it again or use another checkpoint")
    try:
        out = classifier(x)
    except RuntimeError as e:
        raise UserError(f"the classifier {paths['classifier']} cannot read the generator's images of shape "
                        f"{tuple(x.shape[1:])}: {str(e).splitlines()[0][:160]}") from None
    if not torch.isfinite(out).all():
        raise UserError(f"the classifier {paths['classifier']} outputs NaN or Inf on the generator's images; "
                        f"its weights are broken: train it again or use another checkpoint")
    if out.shape[-1] != len(classes):
        raise UserError(f"the classifier {paths['classifier']} has {out.shape[-1]} outputs but its checkpoint "
                        f"lists {len(classes)} classes")


def load_typicality(cfg, device, dataset: str):
    """The typicality judge for `dataset`: a second network's features (cfg.typicality, a zoo name or path)
    with a bank of real training images and the held-out test split to calibrate on; None if switched off."""
    if not cfg.get("typicality"):
        return None
    from datamodules import DataDirError, DataUnavailableError, ImageDataModule
    from trex.analysis import Typicality
    path = resolve_checkpoint(cfg.typicality, *_zoo(cfg), role="typicality")
    ck = read(path, "typicality", device)
    check_datasets(cfg, {"typicality network": classifier_info(ck, path)["dataset"]})
    net, _ = build_classifier(ck, path)
    # the project's own loading; val_size=0 keeps all training images, in order, for the bank to draw from
    dm = ImageDataModule(dataset, cfg.paths.data_dir, val_size=0)
    try:
        dm.prepare_data()
    except (DataDirError, DataUnavailableError) as e:
        raise UserError(f"the typicality check needs the real {dataset} images, and there are none in "
                        f"{cfg.paths.data_dir} ({str(e).splitlines()[0][:120]}).\n  Run `make data` "
                        f"(or python -m datamodules.prepare {dataset}), or set typicality=null") from None
    dm.setup()
    train = dm.train_set.tensors[0]
    bank = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:cfg.typicality_bank]]
    return Typicality(net.to(device), bank, dm.test_set.tensors[0])


def build_sampler(cfg_sampler):
    """The sampler a config describes (`_target_` plus its settings); a setting it lacks is a UserError."""
    from hydra.utils import instantiate
    from hydra.errors import InstantiationException
    try:
        return instantiate(cfg_sampler, _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__ or e
        if isinstance(cause, UserError):
            raise cause from None
        name = str(cfg_sampler.get("_target_", "?")).rpartition(".")[2]
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        raise UserError(f"sampler {name} has no setting {bad.group(1)!r}" if bad else
                        f"sampler {name}: {str(cause).splitlines()[0][:200]}") from None
