"""Figures of a sampling run's draws: where they sit in latent space (t-SNE of prior draws coloured by
predicted class, every target's draws overlaid, one fit) and what the classifier looks at in them
(SmoothGrad w.r.t. each target class, for the draws closest to the target).

    python scripts/sample_views.py runs/demo [--out runs/demo/views] [--prior 3000] [--overlay 200] [--saliency 8]

The run folder is what sample.py writes: config.yaml (naming the classifier and generator
checkpoints) and one SampleSet folder per target. The analysis is trex.analysis.latent_view and
trex.analysis.saliency; this script only loads and writes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def target_classes(s, min_share: float = 0.25) -> list[int]:
    """Output indices a target asks confidence for: those whose ideal value is >= min_share (an
    ambiguous i-v-j target: i and j; 0.6/0.4 interpolation: both), largest first, else the argmax."""
    ideal = np.asarray(s.ideal)
    ks = [int(k) for k in np.argsort(-ideal, kind="stable") if ideal[k] >= min_share][:2]
    return ks or [int(ideal.argmax())]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a sample.py run folder")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default <run>/views)")
    ap.add_argument("--classifier", default=None, help="override the run config's classifier checkpoint")
    ap.add_argument("--generator", default=None, help="override the run config's generator checkpoint")
    ap.add_argument("--prior", type=int, default=3000, help="prior draws in the t-SNE map")
    ap.add_argument("--overlay", type=int, default=200, help="draws of each target in the map (evenly thinned)")
    ap.add_argument("--map-targets", type=int, default=6, help="at most this many targets in the map (those whose "
                    "draws reach their target best); 0 for all")
    ap.add_argument("--saliency", type=int, default=8, help="draws per target in the saliency figure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.map_targets < 0:
        ap.error(f"--map-targets is a count of targets (0 for all), got {args.map_targets}")
    torch.set_num_threads(args.threads)

    import trex
    from omegaconf import OmegaConf
    from lightning_modules.classifier import load_classifier
    from lightning_modules.loading import load_generator
    from trex.analysis.latent_view import latent_view, pick_overlays, prior_predictions
    from trex.analysis.saliency import saliency_figure, smoothgrad
    from trex.plots import best_indices

    cfg = OmegaConf.load(args.run / "config.yaml") if (args.run / "config.yaml").is_file() else {}
    clf_path = args.classifier or cfg.get("classifier")
    gen_path = args.generator or cfg.get("generator")
    if not clf_path or not gen_path:
        raise SystemExit(f"{args.run}/config.yaml names no classifier/generator: pass --classifier and --generator")
    if cfg and OmegaConf.select(cfg, "zoo_profile"):  # zoo names (`classifier_novel`) as sample.py resolves them
        from lightning_modules.zoo import resolve_checkpoint, zoo_of
        zoo = zoo_of(cfg)
        clf_path = resolve_checkpoint(str(clf_path), *zoo, role="classifier")
        gen_path = resolve_checkpoint(str(gen_path), *zoo, role="generator")
    net, classes = load_classifier(clf_path)
    gen = load_generator(gen_path)
    runs = {d.name: trex.SampleSet.load(d) for d in sorted(args.run.iterdir()) if (d / "manifest.json").is_file()}
    if not runs:
        raise SystemExit(f"no sample sets (folders with manifest.json) in {args.run}")
    out = args.out or args.run / "views"
    out.mkdir(parents=True, exist_ok=True)

    z, labels = prior_predictions(gen, net, n=args.prior, seed=args.seed, classes=classes)
    shown = pick_overlays({s.meta.get("target", name): s for name, s in runs.items()}, args.map_targets or None)
    which = "each target's draws" if len(shown) == len(runs) else \
        f"the draws of {len(shown)} of its {len(runs)} targets (best reached)"
    _, fig = latent_view(z, labels, shown, max_overlay=args.overlay, seed=args.seed,
                         title=f"{args.prior:,} prior draws by predicted class, with {which}")
    fig.savefig(out / "latent_tsne.png", dpi=100)
    print(f"wrote {out / 'latent_tsne.png'}")

    for name, s in runs.items():
        idx = best_indices(s, n=min(args.saliency, s.num_chains * s.num_samples))
        if s.images is not None:
            x = torch.from_numpy(s.flat("images")[idx]).float() / 255.0
        else:
            with torch.no_grad():
                x = gen(torch.from_numpy(s.flat("latents")[idx]).float())
        ks = target_classes(s)
        xx, tt = x.repeat_interleave(len(ks), 0), torch.tensor(ks * len(x))
        maps = smoothgrad(net, xx, tt, seed=args.seed)
        p = s.flat("probs")[idx]
        titles = [f"draw {idx[i // len(ks)]}: {classes[tt[i]]} (p={p[i // len(ks), tt[i]]:.2f})" for i in range(len(xx))]
        fig = saliency_figure(xx.numpy(), maps, titles=titles, per_row=4,
                              title=f"{s.meta.get('target', name)}: SmoothGrad of the classifier's logit")
        path = out / f"saliency_{name}.png"
        fig.savefig(path, dpi=100)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
