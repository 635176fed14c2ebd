"""Train a classifier, VAE or GAN: `python train.py experiment=mnist/classifier [profile=paper]`."""
import json
import os
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

from lightning_modules.runinfo import code_version, write_json


def build(cfg: DictConfig):
    """Instantiate data, model, logger and trainer; fails early on bad config or data."""
    out = Path(cfg.paths.output_dir)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()  # unwritable data folder or missing sources fail here, before any training
    model = instantiate(cfg.model, _convert_="all", **_model_data_args(cfg, datamodule))
    ck = cfg.callbacks.checkpoint
    callbacks = [ModelCheckpoint(dirpath=out / "checkpoints", filename="best", monitor=ck.monitor, mode=ck.mode,
                                 save_last=True, save_top_k=1)]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    if logger:
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    trainer = instantiate(cfg.trainer, default_root_dir=str(out), callbacks=callbacks, logger=logger,
                          enable_progress_bar=cfg.callbacks.progress_bar)
    return datamodule, model, trainer


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
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume_path(cfg))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    ckpt = trainer.checkpoint_callback
    best, last = ckpt.best_model_path or ckpt.last_model_path, ckpt.last_model_path
    if cfg.get("test") and type(model).test_step is not pl.LightningModule.test_step:
        for k, v in trainer.test(model, datamodule=datamodule, ckpt_path=best or None)[0].items():
            metrics[k] = float(v)
    result = {"name": cfg.name, "metrics": metrics, "best_checkpoint": best, "last_checkpoint": last,
              "wall_time_s": round(time.time() - start, 1), "epochs": trainer.current_epoch,
              "model": cfg.model._target_, "data": OmegaConf.to_container(cfg.data, resolve=True),
              "profile": cfg.profile.name}
    if hasattr(model, "generator") and cfg.get("fid") and trainer.is_global_zero:
        from lightning_modules.evaluate import generator_report
        result["fid"] = generator_report(model.generator(), datamodule, cfg.get("fid_classifier"), trainer.logger)
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
    result = train(cfg)
    print(json.dumps({k: result[k] for k in ("name", "metrics", "best_checkpoint", "wall_time_s")}, indent=2))


if __name__ == "__main__":
    main()
