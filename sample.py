"""Sample inputs that hit a confidence target: `python sample.py experiment=mnist/ambiguous`."""
import json
import os
import re
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")  # no account or network needed; `wandb sync` uploads later

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import trex
from trex import plots
from trex.samplers import make_sampler
from trex.targets import interpolation, parse


def target_specs(cfg: DictConfig) -> list:
    """The targets of this run, parsed (and so validated) before any model is loaded."""
    if cfg.get("targets"):
        return [parse(t) for t in cfg.targets]
    t = cfg.target
    kinds = {
        "class": lambda: [parse(f"class:{t.i}")],
        "ambiguous": lambda: [trex.targets.Ambiguous(t.i, t.j)],
        "subset": lambda: [trex.targets.AmbiguousSubset(tuple(t.members))],
        "uniform": lambda: [trex.targets.UniformAmbiguity()],
        "p": lambda: [trex.targets.Confidence(dict(t.p))],
        "interpolation": lambda: interpolation(t.i, t.j, t.steps),
    }
    if t.kind not in kinds:
        raise ValueError(f"unknown target kind {t.kind!r}; choose one of {sorted(kinds)}")
    return kinds[t.kind]()


def _zoo(cfg: DictConfig):
    return cfg.paths.zoo_dir, cfg.zoo_profile, cfg.data.dataset


def load_models(cfg: DictConfig, device: torch.device):
    from lightning_modules.classifier import load_classifier
    from lightning_modules.loading import load_generator
    from lightning_modules.zoo import resolve_checkpoint

    classifier, classes = load_classifier(resolve_checkpoint(cfg.classifier, *_zoo(cfg)), device)
    trained_on = classifier.trained_on
    if trained_on and trained_on != cfg.data.dataset:
        raise ValueError(f"the classifier was trained on {trained_on!r} but data.dataset is {cfg.data.dataset!r}; "
                         f"set data.dataset={trained_on} or use a {cfg.data.dataset} classifier")
    generator = load_generator(resolve_checkpoint(cfg.generator, *_zoo(cfg)), map_location=device)
    dist = trex.LatentGaussian(generator.to(device))
    with torch.no_grad():  # a generator whose images the classifier cannot read fails here, not mid-run
        x = dist.decode(dist.sample_prior(2))
        try:
            out = classifier.to(device)(x)
        except RuntimeError as e:
            raise ValueError(f"the classifier cannot read the generator's images of shape {tuple(x.shape[1:])}: {e}")
    if out.shape[-1] != len(classes):
        raise ValueError(f"classifier has {out.shape[-1]} outputs but its checkpoint lists {len(classes)} classes")
    return classifier, classes, dist


def slug(target) -> str:
    return re.sub(r"[^A-Za-z0-9=.,_-]+", "_", str(target)).replace(":", "_")


def run(cfg: DictConfig) -> dict:
    targets = target_specs(cfg)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    classifier, classes, dist = load_models(cfg, device)
    from datamodules.sources import CLASS_NAMES
    names = CLASS_NAMES.get(cfg.data.dataset)
    sampler_kw = {k: v for k, v in OmegaConf.to_container(cfg.sampler).items() if k != "name"}
    logger = _wandb(cfg, out) if cfg.get("wandb") else None
    summary = []
    for target in targets:
        post = trex.RelaxedPosterior(dist, classifier, target, sigma=cfg.sigma, classes=classes)
        folder = out / slug(target)
        res = trex.sample(post, make_sampler(cfg.sampler.name, **sampler_kw), num_chains=cfg.num_chains,
                          num_warmup=cfg.num_warmup, num_samples=cfg.num_samples, thin=cfg.thin, seed=cfg.seed,
                          init=cfg.init, init_candidates=cfg.init_candidates, sigma_schedule=cfg.sigma_schedule,
                          store_images=cfg.store_images, checkpoint=folder / "resume.pt",
                          checkpoint_every=cfg.checkpoint_every, progress=cfg.progress, resample=cfg.resample)
        res.save(folder)
        if cfg.store_images:
            plots.image_grid(res, folder / "grid.png", n=min(cfg.grid_size, res.num_chains * res.num_samples))
        plots.confidence_plot(res, folder / "confidence.png", class_names=names)
        row = _summary_row(res)
        summary.append(row)
        if logger is not None:
            _log(logger, row, folder)
        print(_format_row(row))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "diagnostics.md").write_text(diagnostics_table(summary))
    if logger is not None:
        import wandb
        cols = list(summary[0].keys())
        logger.log({"diagnostics": wandb.Table(columns=cols, data=[[str(r[c]) for c in cols] for r in summary])})
        logger.finish()
    print(f"\nresults in {out}/ (grid.png, confidence.png, samples.npz per target; diagnostics.md)")
    return {"output_dir": str(out), "summary": summary}


def _summary_row(res) -> dict:
    d = res.diagnostics
    conf = res.confidence_summary()
    named = [c for c, v in zip(res.meta["classes"], res.ideal) if v > 0]
    return {"target": res.meta["target"], "sampler": res.meta["sampler"], "samples": res.num_chains * res.num_samples,
            "confidence": {c: f"{conf[c][0]:.3f} ± {conf[c][1]:.3f}" for c in named},
            "near_0.1": round(d["near_target_0.1"], 3), "near_0.05": round(d["near_target_0.05"], 3),
            "accept": round(d["accept_rate"], 3), "divergences": d["divergences"],
            "rhat_max": round(d["rhat_max"], 3), "ess_bulk_min": round(d["ess_bulk_min"], 1),
            "wall_s": res.meta["wall_time_s"], "grad_evals": res.meta.get("grad_evals")}


def _format_row(r) -> str:
    return (f"{r['target']:>20s}  conf {r['confidence']}  near(0.1)={r['near_0.1']:.2f}  acc={r['accept']:.2f}  "
            f"R-hat={r['rhat_max']:.2f}  ESS={r['ess_bulk_min']:.0f}  {r['wall_s']:.0f}s")


def diagnostics_table(rows) -> str:
    head = "| target | sampler | samples | confidence (mean ± std) | within 0.1 | within 0.05 | accept | divergences | max R-hat | min bulk ESS | wall s |"
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        conf = ", ".join(f"{c}: {v}" for c, v in r["confidence"].items())
        lines.append(f"| {r['target']} | {r['sampler']} | {r['samples']} | {conf} | {r['near_0.1']:.3f} | "
                     f"{r['near_0.05']:.3f} | {r['accept']:.2f} | {r['divergences']} | {r['rhat_max']:.2f} | "
                     f"{r['ess_bulk_min']:.0f} | {r['wall_s']:.0f} |")
    return "\n".join(lines) + "\n"


def _wandb(cfg, out):
    import wandb
    return wandb.init(project="bayes-trex", name=cfg.name, dir=str(out), job_type="sample",
                      config=OmegaConf.to_container(cfg, resolve=True))


def _log(logger, row, folder):
    import wandb
    key = slug(row["target"])
    logger.log({f"{key}/grid": wandb.Image(str(folder / "grid.png")) if (folder / "grid.png").exists() else None,
                f"{key}/confidence": wandb.Image(str(folder / "confidence.png")),
                f"{key}/near_0.1": row["near_0.1"], f"{key}/accept": row["accept"],
                f"{key}/ess_bulk_min": row["ess_bulk_min"], f"{key}/rhat_max": row["rhat_max"]})


@hydra.main(version_base="1.3", config_path="configs", config_name="sample")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
