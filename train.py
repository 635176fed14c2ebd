"""Train a classifier, VAE or GAN: `python train.py experiment=mnist/classifier [profile=paper]`."""
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")  # no account or network needed; `wandb sync` uploads later

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger

from lightning_modules.cli import fail, precheck
from lightning_modules.progress import EpochLines, on_terminal
from lightning_modules.rngstate import RNGStates
from lightning_modules.runinfo import code_version, write_json
from trex.errors import UserError
from trex.safeload import read, weights_digest


def build(cfg: DictConfig):
    """Instantiate data, model, logger and trainer; fails early on bad config or data."""
    out = Path(cfg.paths.output_dir)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()  # unwritable data folder or missing sources fail here, before any training
    model = instantiate(cfg.model, _convert_="all", **_model_data_args(cfg, datamodule))
    callbacks = [*checkpoint_callbacks(out / "checkpoints", cfg.callbacks.checkpoint), RNGStates()]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    if logger:
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    bar = cfg.callbacks.progress_bar and on_terminal()
    if cfg.callbacks.progress_bar and not bar:
        callbacks.append(EpochLines())  # a log gets a line per epoch, not thousands of bar redraws
    trainer = instantiate(cfg.trainer, default_root_dir=str(out), callbacks=callbacks, logger=logger,
                          enable_progress_bar=bar)
    return datamodule, model, trainer


def checkpoint_callbacks(folder: Path, ck) -> list[ModelCheckpoint]:
    """[last] or [last, best]: last.ckpt after every epoch (what a resume starts from) and best.ckpt by
    the monitored metric. Lightning's own save_last rewrites last.ckpt only when a best.ckpt is
    saved, so a run interrupted after epochs without improvement would go back to the last one that improved."""
    last = ModelCheckpoint(dirpath=folder, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
    if ck.monitor is None:
        return [last]
    return [last, ModelCheckpoint(dirpath=folder, filename="best", monitor=ck.monitor, mode=ck.mode, save_top_k=1)]


def _model_data_args(cfg, datamodule) -> dict:
    # Classifiers record which original labels their outputs stand for (subset classifiers map back).
    target = cfg.model._target_
    if target.endswith("ClassifierModule"):
        return {"classes": datamodule.classes, "dataset": datamodule.dataset}
    return {}


def resume_path(cfg: DictConfig):
    if cfg.get("ckpt_path"):
        return cfg.ckpt_path
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    return str(last) if cfg.get("resume") and last.exists() else None


def train(cfg: DictConfig) -> dict:
    pl.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    datamodule, model, trainer = build(cfg)
    if trainer.is_global_zero:
        OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    if trainer.logger:
        trainer.logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    start = time.time()
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume_path(cfg), weights_only=True)  # never runs pickled code
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    saved = {c.filename: c.best_model_path for c in trainer.callbacks if isinstance(c, ModelCheckpoint)}
    last = saved["last"]  # the "last" callback keeps exactly one checkpoint: the latest epoch's
    best = saved.get("best") or last
    if cfg.get("test") and type(model).test_step is not pl.LightningModule.test_step:
        for loader in trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True):
            metrics.update({k: float(v) for k, v in loader.items()})  # one dict per test loader (domain adaptation: two)
    result = {"name": cfg.name, "metrics": metrics, "best_checkpoint": best, "last_checkpoint": last,
              "wall_time_s": round(time.time() - start, 1), "epochs": trainer.current_epoch,
              "model": cfg.model._target_, "data": OmegaConf.to_container(cfg.data, resolve=True),
              "profile": cfg.profile.name,
              # what bit-for-bit retraining needs besides the code and seed: the same torch and thread count
              # (CPU reductions split by thread), and the digest to check it against
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "weights": weights_digest(read(best, "trained model")) if best and trainer.is_global_zero else None}
    if hasattr(model, "generator") and cfg.get("fid") and trainer.is_global_zero:
        from lightning_modules.evaluate import generator_report
        from lightning_modules.loading import load_generator
        # score the checkpoint that is kept (the zoo copies `best`), not the last epoch's weights
        generator = load_generator(best) if best else model.generator()
        result["fid"] = generator_report(generator, datamodule, cfg.get("fid_classifier"), trainer.logger)
    if trainer.is_global_zero:
        write_json(out / "metrics.json", result)
        write_json(out / "manifest.json", {"kind": "train", "code_version": code_version(),
                                           "files": sorted(str(p.relative_to(out)) for p in out.rglob("*")
                                                           if p.is_file() and "wandb" not in p.parts)})
    if isinstance(trainer.logger, WandbLogger):
        import wandb
        wandb.finish()  # writes the run's summary now, so the offline folder is complete
    return result


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    from datamodules import DataDirError, DataUnavailableError
    try:
        result = train(cfg)
    except (UserError, DataDirError, DataUnavailableError) as e:  # what the user can fix: no traceback
        fail(e)
    print(json.dumps({k: result[k] for k in ("name", "metrics", "best_checkpoint", "wall_time_s")}, indent=2))


if __name__ == "__main__":
    precheck("train", sys.argv[1:])  # unknown keys (with the closest valid one) before Hydra makes a folder
    main()
