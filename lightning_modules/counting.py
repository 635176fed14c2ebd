"""The counting question-answering model for rendered scenes (issue 16).

Loss: cross-entropy of the answer to random counting questions, plus two auxiliary terms from
the scene graph, which the data has for free: the per-cell object density (squared error against
a blob at each object's projected centre, and of its total against the object count) and the attributes of the cells each object covers (cross-entropy
weighted by the splat). The auxiliary terms teach the maps their meaning directly; the answer term
sets how sharp the answer distribution is (τ).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import pytorch_lightning as pl
from torchmetrics.classification import MulticlassAccuracy

from lightning_modules.components.counting import GROUPS, SceneCounter, cell_targets
from trex.scenes.questions import NUM_ANSWERS, answer, random_questions
from trex.scenes.render import Camera
from trex.safeload import CheckpointError, read


class CountingModule(pl.LightningModule):
    def __init__(self, width: int = 64, lr: float = 2e-3, weight_decay: float = 0.0, questions_per_scene: int = 8,
                 density_weight: float = 1.0, attribute_weight: float = 1.0, answer_weight: float = 1.0,
                 image_size: int = 128, scheduler: str | None = "onecycle"):
        super().__init__()
        self.save_hyperparameters()
        self.net = SceneCounter(width)
        self.camera = Camera(size=image_size)
        self.metrics = torch.nn.ModuleDict({f"{s}_acc": MulticlassAccuracy(num_classes=NUM_ANSWERS, average="micro")
                                            for s in ("train", "val", "test")})

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        return self.net(images, questions)

    def _losses(self, images, scenes, questions, answers):
        density, logp = self.net.maps(images)
        target, (ib, cell, w, labels) = cell_targets(scenes, self.camera)
        # the map, and its total: the count of all objects gets a direct gradient, not only through the map
        density_loss = (density - target).square().sum((1, 2)).mean() \
            + (density.sum((1, 2)) - target.sum((1, 2))).square().mean()
        attr_loss = 0.0
        for k, lp in enumerate(logp):
            flat = lp.flatten(2)[ib, :, cell]                          # (N, K) at each object's cells
            attr_loss = attr_loss + (w * F.cross_entropy(flat, labels[:, k], reduction="none")).sum() / w.sum()
        b, q = questions.shape[:2]
        per_question = (density.repeat_interleave(q, 0), [lp.repeat_interleave(q, 0) for lp in logp])
        logits = self.net.answer_logits(self.net.count(None, questions.reshape(b * q, 4), maps=per_question))
        answer_loss = F.cross_entropy(logits, answers.reshape(-1))
        hp = self.hparams
        loss = hp.density_weight * density_loss + hp.attribute_weight * attr_loss + hp.answer_weight * answer_loss
        return loss, logits, {"density": density_loss, "attributes": attr_loss, "answer": answer_loss}

    def _step(self, batch, stage):
        images, scenes = batch[0].float() / 255, batch[1]
        if stage == "train":
            questions = random_questions(scenes, self.hparams.questions_per_scene)
            answers = torch.stack([answer(scenes, questions[:, k]) for k in range(questions.shape[1])], 1)
        else:
            questions, answers = batch[2], batch[3]
        loss, logits, parts = self._losses(images, scenes, questions, answers)
        on_step = stage == "train"
        self.metrics[f"{stage}_acc"](logits, answers.reshape(-1))
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True)
        for k, v in parts.items():
            self.log(f"{stage}/{k}", v, on_step=False, on_epoch=True)
        self.log(f"{stage}/acc", self.metrics[f"{stage}_acc"], on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/tau", self.net.log_tau.exp(), on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler is None:
            return opt
        if hp.scheduler != "onecycle":
            raise ValueError(f"unknown scheduler {hp.scheduler!r}; choose onecycle or null")
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp.lr, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def load_counter(path, map_location="cpu") -> SceneCounter:
    """The bare network (eval mode) from a CountingModule checkpoint."""
    ckpt = read(path, "counting model", map_location)
    hp = ckpt.get("hyper_parameters", {})
    if "questions_per_scene" not in hp:
        raise CheckpointError(f"{path} is not a counting-model checkpoint (no counting hyperparameters)")
    net = SceneCounter(hp.get("width", 64))
    net.load_state_dict({k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")})
    return net.eval()
