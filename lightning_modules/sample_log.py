"""W&B logging for sample.py (offline unless WANDB_MODE says otherwise): one run, each target's
figures, numbers and a table of its draws under its own key, and the diagnostics table at the end.
The runs of one sampling experiment (configs/sampling/, e.g. the ten failure runs) share a W&B group,
its `experiment_name`, so a dashboard can set them side by side."""
from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf

from trex.targets import slug

MAX_ROWS = 256  # draws per target in its table: evenly spaced over the chains' kept draws


def start(cfg, out):
    import wandb
    return wandb.init(project="bayes-trex", name=cfg.name, group=cfg.get("experiment_name"), dir=str(out),
                      job_type="sample", config=OmegaConf.to_container(cfg, resolve=True))


def draws_table(res, max_rows: int = MAX_ROWS):
    """A wandb.Table of up to `max_rows` draws: image, target, chain, draw, each class's confidence,
    distance to the target and typicality (where scored)."""
    import wandb
    c, s = res.num_chains, res.num_samples
    idx = np.unique(np.linspace(0, c * s - 1, min(max_rows, c * s)).round().astype(int))
    classes = [int(k) for k in res.meta.get("classes", range(res.probs.shape[-1]))]
    probs, dist = res.flat("probs"), res.distance().reshape(-1)
    images = None if res.images is None else res.images.reshape(-1, *res.images.shape[2:])
    typ = None if res.typicality is None else res.typicality.reshape(-1)
    cols = (["image"] if images is not None else []) + ["target", "chain", "draw", *[f"p_{k}" for k in classes],
                                                         "distance"] + (["typicality"] if typ is not None else [])
    rows = []
    for i in idx:
        img = []
        if images is not None:
            a = images[i]
            img = [wandb.Image(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0))]
        rows.append([*img, str(res.meta.get("target")), int(i // s), int(i % s), *map(float, probs[i]),
                     float(dist[i]), *([] if typ is None else [float(typ[i])])])
    return wandb.Table(columns=cols, data=rows)


def target(logger, row, folder, res=None):
    import wandb
    key = slug(row["target"])
    figures = {f"{key}/{f}": wandb.Image(str(folder / f"{f}.png"))
               for f in ("grid", "confidence", "typicality") if (folder / f"{f}.png").exists()}
    numbers = {f"{key}/{k}": row[k] for k in ("near_0.1", "accept", "ess_bulk_min", "rhat_max", "confidence_rhat_max")}
    if row.get("typical") is not None:
        numbers[f"{key}/typical"] = row["typical"]
    draws = {} if res is None else {f"{key}/draws": draws_table(res)}
    logger.log({**figures, **numbers, **draws, f"{key}/stuck_chains": len(row["stuck_chains"])})


def finish(logger, summary):
    import wandb
    cols = list(summary[0].keys())
    logger.log({"diagnostics": wandb.Table(columns=cols, data=[[str(r[c]) for c in cols] for r in summary])})
    logger.finish()
