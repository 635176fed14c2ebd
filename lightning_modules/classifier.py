"""Classifier training: the standard cross-entropy classifier and the ambivalent (soft-target KL) one."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import pytorch_lightning as pl
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from trex.safeload import CheckpointError, read
from lightning_modules.components.classifiers import MLP, LeNet, PaperCNN

NETWORKS = {"paper_cnn": PaperCNN, "lenet": LeNet, "mlp": MLP}


def build_network(net: str, num_classes: int, **kwargs) -> torch.nn.Module:
    if net not in NETWORKS:
        raise ValueError(f"unknown classifier network {net!r}; choose one of {sorted(NETWORKS)}")
    return NETWORKS[net](num_classes=num_classes, **kwargs)


class ClassifierModule(pl.LightningModule):
    """Cross-entropy classifier over `classes` (original dataset labels, kept in the checkpoint).

    A classifier trained on a class subset (e.g. MNIST {0,1,3,6,9}) predicts K = len(classes)
    outputs; output k means original label classes[k].
    """

    def __init__(self, classes: list[int] | None = None, net: str = "paper_cnn", net_kwargs: dict | None = None,
                 optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 scheduler: str | None = None, gamma: float = 0.7, dataset: str | None = None):
        super().__init__()
        classes = list(range(10)) if classes is None else [int(c) for c in classes]
        if len(set(classes)) != len(classes) or not classes:
            raise ValueError(f"classes must be a non-empty list of distinct labels, got {classes}")
        self.save_hyperparameters()
        self.classes = classes
        self.net = build_network(net, len(classes), **(net_kwargs or {}))
        k = len(classes)
        self.metrics = torch.nn.ModuleDict({
            f"{stage}_acc": MulticlassAccuracy(num_classes=k, average="micro") for stage in ("train", "val", "test")
        })
        self.val_ece = MulticlassCalibrationError(num_classes=k, n_bins=15)
        self.test_ece = MulticlassCalibrationError(num_classes=k, n_bins=15)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def _step(self, batch, stage: str):
        x, y = batch
        logits = self(x)
        loss = self.loss(logits, y)
        on_step = stage == "train"
        self.metrics[f"{stage}_acc"](logits, y)
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=not on_step)
        self.log(f"{stage}/acc", self.metrics[f"{stage}_acc"], on_step=False, on_epoch=True, prog_bar=True)
        if stage != "train":
            ece = self.val_ece if stage == "val" else self.test_ece
            ece(logits.softmax(-1), y)
            self.log(f"{stage}/ece", ece, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        hp = self.hparams
        opts = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adadelta": torch.optim.Adadelta,
                "sgd": lambda p, **kw: torch.optim.SGD(p, momentum=0.9, **kw)}
        if hp.optimizer not in opts:
            raise ValueError(f"unknown optimizer {hp.optimizer!r}; choose one of {sorted(opts)}")
        opt = opts[hp.optimizer](self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler is None:
            return opt
        if hp.scheduler == "step":  # the PyTorch MNIST example's schedule: lr *= gamma every epoch
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=hp.gamma)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        if hp.scheduler == "onecycle":
            steps = self.trainer.estimated_stepping_batches
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp.lr, total_steps=int(steps))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if hp.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.trainer.max_epochs)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        raise ValueError(f"unknown scheduler {hp.scheduler!r}; choose step, onecycle, cosine or null")


def soft_targets(y: torch.Tensor, num_classes: int, rule: str = "shift", shift: int = 1, weight: float = 0.5,
                 matrix: list[list[float]] | None = None) -> torch.Tensor:
    """Target distributions for the ambivalent classifier (paper Eqs. 13-14 with rule='shift', shift=1, weight=0.5).

    rule='shift': (1 - weight) on y and weight on (y + shift) mod K.
    rule='matrix': row y of a K x K row-stochastic matrix (any soft-target rule).
    """
    if rule == "shift":
        t = torch.zeros(len(y), num_classes, device=y.device)
        t[torch.arange(len(y)), y] = 1.0 - weight
        t[torch.arange(len(y)), (y + shift) % num_classes] += weight
        return t
    if rule == "matrix":
        m = torch.as_tensor(matrix, dtype=torch.float32, device=y.device)
        return m[y]
    raise ValueError(f"unknown soft-target rule {rule!r}; choose 'shift' or 'matrix'")


class AmbivalentClassifierModule(ClassifierModule):
    """Trained with KL(target || model) to soft targets, so it is deliberately ambivalent between y and y+1."""

    def __init__(self, *args, rule: str = "shift", shift: int = 1, weight: float = 0.5,
                 matrix: list[list[float]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.save_hyperparameters()
        k = len(self.classes)
        if rule == "matrix":
            m = torch.as_tensor(matrix, dtype=torch.float64)
            if m.shape != (k, k) or (m < 0).any() or not torch.allclose(m.sum(1), torch.ones(k, dtype=m.dtype)):
                raise ValueError(f"matrix must be a {k}x{k} row-stochastic matrix")
        elif not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must lie in [0, 1], got {weight}")

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        t = soft_targets(y, logits.shape[-1], hp.rule, hp.shift, hp.weight, hp.matrix)
        return F.kl_div(logits.log_softmax(-1), t, reduction="batchmean")


def classifier_info(ckpt: dict, path) -> dict:
    """What a classifier checkpoint says about itself (network, classes, dataset), read before any
    weights are loaded; refuses a checkpoint of another kind."""
    hp = ckpt.get("hyper_parameters", {})
    if "net" not in hp or "classes" not in hp:
        kind = " (it looks like a generator: pass it as generator=...)" if ckpt.get("module_class") or "hidden" in hp \
            or "width" in hp else ""
        raise CheckpointError(f"{path} is not a classifier checkpoint (no 'net'/'classes' hyperparameters){kind}")
    return {"net": hp["net"], "classes": [int(c) for c in hp["classes"]], "dataset": hp.get("dataset"),
            "net_kwargs": hp.get("net_kwargs") or {}}


def build_classifier(ckpt: dict, path) -> tuple[torch.nn.Module, list[int]]:
    info = classifier_info(ckpt, path)
    net = build_network(info["net"], len(info["classes"]), **info["net_kwargs"])
    state = {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"the classifier checkpoint {path} does not fit its network {info['net']}: "
                              f"{str(e)[:200]}") from None
    net.trained_on = info["dataset"]  # lets callers refuse a classifier from another dataset
    return net.eval(), info["classes"]


def load_classifier(path, map_location="cpu") -> tuple[torch.nn.Module, list[int]]:
    """Bare network (eval mode) and its original class labels, from a Lightning checkpoint."""
    return build_classifier(read(path, "classifier", map_location), path)
