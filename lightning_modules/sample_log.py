"""W&B logging for sample.py (offline unless WANDB_MODE says otherwise): one run, each target's
figures and numbers under its own key, and the diagnostics table at the end."""
from __future__ import annotations

from omegaconf import OmegaConf

from trex.targets import slug


def start(cfg, out):
    import wandb
    return wandb.init(project="bayes-trex", name=cfg.name, dir=str(out), job_type="sample",
                      config=OmegaConf.to_container(cfg, resolve=True))


def target(logger, row, folder):
    import wandb
    key = slug(row["target"])
    figures = {f"{key}/{f}": wandb.Image(str(folder / f"{f}.png"))
               for f in ("grid", "confidence", "typicality") if (folder / f"{f}.png").exists()}
    numbers = {f"{key}/{k}": row[k] for k in ("near_0.1", "accept", "ess_bulk_min", "rhat_max", "confidence_rhat_max")}
    if row.get("typical") is not None:
        numbers[f"{key}/typical"] = row["typical"]
    logger.log({**figures, **numbers, f"{key}/stuck_chains": len(row["stuck_chains"])})


def finish(logger, summary):
    import wandb
    cols = list(summary[0].keys())
    logger.log({"diagnostics": wandb.Table(columns=cols, data=[[str(r[c]) for c in cols] for r in summary])})
    logger.finish()
