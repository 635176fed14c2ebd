"""Sample inputs that hit a confidence target: `python sample.py experiment=mnist/ambiguous`."""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")  # no account or network needed; `wandb sync` uploads later

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

import trex
from datamodules.sources import CLASS_NAMES
from lightning_modules import sample_log
from lightning_modules.cli import job_failed, precheck
from lightning_modules.runinfo import record_models
from trex import plots
from trex.summary import diagnostics_table, format_row, summary_row
from trex.targets import slug, target_specs


def run(cfg: DictConfig) -> dict:
    from lightning_modules.models import build_sampler, load_models, load_typicality
    targets = target_specs(cfg.get("targets"), cfg.target)  # a bad target fails before any model loads
    plan = trex.Plan.of({**cfg, "store_images": cfg.store_images or bool(cfg.get("typicality"))})  # and a bad plan
    build_sampler(cfg.sampler)  # and a bad sampler setting
    out = Path(cfg.paths.output_dir)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    models = load_models(cfg, device)  # the start-up check: before anything is written
    for t in targets:
        t.bind(models.classes)  # a class the classifier does not know fails here, not mid-run
    judge = load_typicality(cfg, device, cfg.data.dataset)
    out.mkdir(parents=True, exist_ok=True)
    (out / "error.txt").unlink(missing_ok=True)  # left by an earlier failed start of this job
    record_models(out, models.paths, models.digests)  # a folder sampled from other weights stops here
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    logger = sample_log.start(cfg, out) if cfg.get("wandb") else None
    posts = [trex.RelaxedPosterior(models.distribution, models.classifier, t, sigma=cfg.sigma,
                                   classes=models.classes) for t in targets]
    sampler = build_sampler(cfg.sampler)
    results = trex.runner.sample_in(out, posts, sampler, plan, population=cfg.population)  # skips finished ones
    summary = []
    for post, res in zip(posts, results):
        folder = out / slug(post.target)
        if judge is not None:
            trex.analysis.annotate(res, judge)
        res.save(folder)
        plots.figures(res, folder, cfg.grid_size, CLASS_NAMES.get(cfg.data.dataset))
        summary.append(summary_row(res))
        if logger is not None:
            sample_log.target(logger, summary[-1], folder, res)
        print(format_row(summary[-1]), flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "diagnostics.md").write_text(diagnostics_table(summary))
    if logger is not None:
        sample_log.finish(logger, summary)
    print(f"\nresults in {out}/ (grid.png, confidence.png, samples.npz per target; diagnostics.md)")
    return {"output_dir": str(out), "summary": summary}


@hydra.main(version_base="1.3", config_path="configs", config_name="sample")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except trex.UserError as e:  # one line; in a multirun the other jobs go on (error.txt for the report)
        job_failed(e, Path(cfg.paths.output_dir), cfg.paths.runs_dir)


if __name__ == "__main__":
    precheck("sample", sys.argv[1:])  # unknown keys and unwritable folders, before Hydra makes a folder
    main()
