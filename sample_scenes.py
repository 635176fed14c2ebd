"""Sample the paper's scene targets with RWM over scene graphs and explain the confident draws:
`python sample_scenes.py [targets='[five_spheres]']`. Writes per target a SampleSet folder and
figures, and summary.json / summary.md / explanations.json for the run."""
import json
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

import trex
from lightning_modules.cli import fail
from lightning_modules.counting import load_counter
from trex.scenes import experiment, figures, vocab
from trex.scenes.questions import text


def run(cfg: DictConfig) -> dict:
    unknown = [t for t in cfg.targets if t not in cfg.catalogue]
    if unknown:
        raise trex.UserError(f"unknown scene target {unknown[0]!r}; choose from {sorted(cfg.catalogue)}")
    targets = [experiment.SceneTarget(name=t, **OmegaConf.to_container(cfg.catalogue[t])) for t in cfg.targets]
    plan = trex.Plan.of({**cfg, "store_images": False})  # the renderer is deterministic: pictures come from latents
    counter = load_counter(cfg.counter)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    rows, notes, grid = [], {}, []
    for t in targets:
        res, prior, clf = experiment.sample_target(counter, t, plan, cfg.sigma, cfg.num_objects, cfg.scale,
                                                   cfg.target_accept, folder=out / t.name)
        res.save(out / t.name)
        rows.append(experiment.summary(res, t))
        print(json.dumps(rows[-1]), flush=True)
        best = experiment.pick(res, t, 8, wrong_only=False)
        p = clf(prior.decode(best)).softmax(-1)[:, t.answer]
        grid.append((f"{t.name}\n{t.world}", prior.decode(best), [f"p={float(v):.3f}" for v in p]))
        if t.kind in cfg.explain:
            z = experiment.pick(res, t, cfg.explain_max, wrong_only=True)
            if len(z) == 0:
                notes[t.name] = {"confident_wrong_draws": 0}
                continue
            e = experiment.explain_draws(clf, prior, z, t, cfg.smoothgrad_samples, cfg.smoothgrad_stdev)
            notes[t.name] = {"confident_wrong_draws": len(z), "salient_is_decisive": float(e["agree"].float().mean()),
                             "salient_removal_flips": float(e["salient_flips"].float().mean()),
                             "salient_per_pixel_is_decisive": float(e["agree_mean"].float().mean()),
                             "p_full_mean": float(e["full"].mean()),
                             "p_without_decisive_mean": float(e["without"].gather(1, e["decisive"][:, None]).mean()),
                             "scenes": [vocab.describe(x) for x in z[:cfg.figure_rows]]}
            figures.explanation(z, e, cfg.figure_rows, f"{t.name}: {t.world}",
                                f"p({t.answer} for '{text(torch.as_tensor(clf.question))}')", out / f"{t.name}_explained.png")
    figures.scene_rows(grid, out / "scenes.png")
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    (out / "explanations.json").write_text(json.dumps(notes, indent=2))
    (out / "summary.md").write_text(table(rows, notes))
    print(table(rows, notes))
    return {"output_dir": str(out), "summary": rows, "explanations": notes}


def table(rows, notes) -> str:
    head = ("| target | question → answer | world | mean ± std p(answer) | share > 0.9 | true answer | "
            "confident & wrong | salient = decisive; salient's removal < 0.5 | paper (mean ± std) |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        n = notes.get(r["name"], {})
        agree = f"{n['salient_is_decisive']:.2f}; {n['salient_removal_flips']:.2f} (of {n['confident_wrong_draws']})" \
            if n.get("confident_wrong_draws") \
            else ("none to explain" if r["name"] in notes else "")
        lines.append(f"| {r['name']} | {r['question']} → {r['answer']} | {r['world']} | {r['mean']:.3f} ± {r['std']:.3f} "
                     f"| {r['above_0.9']:.2f} | {r['true_answer_share']:.2f} | {r['confident_and_wrong']:.2f} | {agree} "
                     f"| {r['paper']} |")
    return "\n".join(lines) + "\n"


@hydra.main(version_base="1.3", config_path="configs", config_name="sample_scenes")
def main(cfg: DictConfig) -> None:
    torch.set_num_threads(int(cfg.threads))
    try:
        run(cfg)
    except trex.UserError as e:
        fail(e)


if __name__ == "__main__":
    main()
