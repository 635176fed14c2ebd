"""Sec. 4.8's finding, measured: is the adapted model (ADDA) overconfident where the baseline is not?

For the LeNet baseline (source digits only) and ADDA (adapted to unlabeled MNIST):
  1. MNIST test accuracy and calibration (torchmetrics ECE, a reliability diagram);
  2. high-confidence sampling of every class with an MNIST generator (HMC through trex.sample);
  3. each model's accuracy on its own confident draws (p >= 0.9), judged by an independent labeler:
     MNIST classifiers of three architectures (the zoo's classifier, lenet, mlp), counting only the
     draws they all agree on (Table 3), and grids of the draws (Fig. 11);
  4. beyond the paper: draws where both are >= 0.9 confident in different classes (trex's
     Disagreement target over trex.Stacked(baseline, adda)), for the pairs they disagree on most.

    python scripts/adda_finding.py [--generator gan] [--chains 16 --warmup 200 --samples 100]

Sample sets are kept under --out and reused when the script runs again with the same settings.
Results go to <out>/results.json and <out>/tables.md; figures to --figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import trex  # noqa: E402
from trex.analysis.labeler import accuracy_table, ensemble_vote, reliability  # noqa: E402
from lightning_modules.evaluate import class_probs  # noqa: E402

CLASSES = list(range(10))
MODELS = {"baseline": "adda_source", "adda": "adda"}
LABELERS = ("classifier", "lenet", "mlp")


def mnist_test(data_dir):
    from datamodules import ImageDataModule
    dm = ImageDataModule("mnist", data_dir, val_size=0)
    dm.prepare_data()
    dm.setup()
    return dm.test_set.tensors


def predict(net, x) -> np.ndarray:
    return class_probs(net, x).numpy()


def sample(post, folder: Path, args, seed: int) -> trex.SampleSet:
    if (folder / "manifest.json").exists():
        return trex.SampleSet.load(folder)
    start = time.time()
    run = trex.sample(post, trex.samplers.HMC(), num_chains=args.chains, num_warmup=args.warmup,
                      num_samples=args.samples, seed=seed, progress=False)
    run.save(folder)
    print(f"  {post.target}: {time.time() - start:.0f} s, near target {run.near_target(0.1):.3f}", flush=True)
    return run


def frame(imgs: torch.Tensor, colours) -> torch.Tensor:
    """(N, 1, H, W) grey -> (N, 3, H+4, W+4) with a coloured frame per image (None: white)."""
    out = torch.ones(len(imgs), 3, imgs.shape[-2] + 4, imgs.shape[-1] + 4)
    for k, c in enumerate(colours):
        if c is not None:
            out[k] = torch.tensor(c, dtype=torch.float32).view(3, 1, 1)
        out[k, :, 2:-2, 2:-2] = imgs[k, 0]
    return out


RED, ORANGE = (0.9, 0.1, 0.1), (1.0, 0.65, 0.0)


def grid_rows(rows, path, nrow):
    from torchvision.utils import save_image
    save_image(torch.cat(rows), path, nrow=nrow, padding=1, pad_value=1.0)


def verdict_colour(label, wanted):
    return ORANGE if label < 0 else (RED if label != wanted else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default="zoo/quick/mnist")
    ap.add_argument("--generator", default="gan", help="zoo name or path of the MNIST generator")
    ap.add_argument("--chains", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--confident", type=float, default=0.9, help="a draw counts as high-confidence at p >= this")
    ap.add_argument("--pairs", type=int, default=3, help="disagreement targets: the most frequent test-set pairs")
    ap.add_argument("--models", default="baseline,adda",
                    help="sample only these (e.g. baseline while ADDA trains); tables and disagreement need both")
    ap.add_argument("--out", default="runs/adda_finding")
    ap.add_argument("--figures", default="docs/results")
    ap.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "data"))
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from lightning_modules.classifier import load_classifier
    from lightning_modules.loading import load_generator

    zoo = Path(args.zoo)
    nets = {k: load_classifier(zoo / f"{MODELS[k]}.ckpt")[0] for k in args.models.split(",")}
    labelers = {k: load_classifier(zoo / f"{k}.ckpt")[0] for k in LABELERS}
    gen_path = Path(args.generator) if Path(args.generator).is_file() else zoo / f"{args.generator}.ckpt"
    dist = trex.LatentGaussian(load_generator(gen_path))
    out = Path(args.out) / f"{gen_path.stem}_c{args.chains}_w{args.warmup}_s{args.samples}"
    figs = Path(args.figures)
    figs.mkdir(parents=True, exist_ok=True)
    res = {"generator": str(gen_path), "settings": vars(args), "models": {k: str(zoo / f"{MODELS[k]}.ckpt") for k in nets}}

    # 1. the MNIST test set: accuracy, calibration, and the labelers' own accuracy
    from torchmetrics.classification import MulticlassCalibrationError
    x, y = mnist_test(args.data_dir)
    test = {k: predict(n, x) for k, n in {**nets, **labelers}.items()}
    res["test"] = {}
    for k, p in test.items():
        ece = MulticlassCalibrationError(num_classes=10, n_bins=15)(torch.tensor(p), y).item()
        res["test"][k] = {"accuracy": float((p.argmax(-1) == y.numpy()).mean()), "ece": ece,
                          "reliability": reliability(p, y.numpy(), 15)}
    lab, agree = ensemble_vote([test[k] for k in LABELERS])
    res["labeler_test"] = {"agreed_share": float(agree.mean()),
                           "accuracy_on_agreed": float((lab[agree] == y.numpy()[agree]).mean()),
                           "wrong_share_of_all": float(((lab != y.numpy()) & agree).mean())}
    if len(nets) < len(MODELS):
        print("(reliability figure, tables and disagreement need both models)")
    else:
        reliability_figure({k: res["test"][k] for k in MODELS}, figs / "adda_reliability.png")

    # 2-3. high-confidence draws of every class, judged by the labelers
    res["high_confidence"] = {}
    rows_by_model = {}
    for name, net in nets.items():
        print(f"{name}: high-confidence sampling of every class", flush=True)
        wanted, labels, agreed, rows = [], [], [], []
        near = {}
        for c in CLASSES:
            post = trex.RelaxedPosterior(dist, net, f"class:{c}", sigma=0.05, classes=CLASSES)
            s = sample(post, out / name / f"class_{c}", args, seed=c)
            probs = s.flat("probs")
            confident = probs[:, c] >= args.confident
            near[c] = {"draws": int(len(probs)), "confident": int(confident.sum()),
                       "mean_p": float(probs[:, c].mean()), "rhat_max": s.diagnostics.get("rhat_max")}
            imgs = torch.from_numpy(s.flat("images")).float() / 255.0
            l, a = ensemble_vote([predict(labelers[k], imgs) for k in LABELERS])
            wanted.append(np.full(int(confident.sum()), c))
            labels.append(l[confident])
            agreed.append(a[confident])
            # Fig. 11: per class one row, one draw per chain (the closest to the target first)
            from trex.plots import best_indices
            idx = best_indices(s, n=10)
            rows.append(frame(imgs[idx], [verdict_colour(l[i], c) for i in idx]))
        wanted, labels, agreed = np.concatenate(wanted), np.concatenate(labels), np.concatenate(agreed)
        res["high_confidence"][name] = {"per_class": near,
                                        "table": accuracy_table(wanted, labels, agreed, CLASSES)}
        rows_by_model[name] = rows
        grid_rows(rows, figs / f"adda_high_confidence_{name}.png", nrow=10)

    if len(nets) < len(MODELS):
        return
    # 4. disagreement: the class pairs the two models split most often on the test set
    pa, pb = test["baseline"].argmax(-1), test["adda"].argmax(-1)
    counts = {}
    for i, j in zip(pa, pb):
        if i != j:
            counts[(int(i), int(j))] = counts.get((int(i), int(j)), 0) + 1
    pairs = sorted(counts, key=lambda k: -counts[k])[:args.pairs]
    both = trex.Stacked(nets["baseline"], nets["adda"])
    res["disagreement"] = {"test_disagreements": int((pa != pb).sum()), "pairs": {}}
    drows = []
    for i, j in pairs:
        print(f"disagreement: baseline says {i}, ADDA says {j}", flush=True)
        post = trex.RelaxedPosterior(dist, both, trex.targets.Disagreement(i, j), sigma=0.05,
                                     output="probs", classes=both.classes)
        s = sample(post, out / "disagree" / f"{i}_{j}", args, seed=100 + 10 * i + j)
        p_a, p_b = both.halves(torch.as_tensor(s.flat("probs")))
        ok = (p_a[:, i] >= args.confident) & (p_b[:, j] >= args.confident)
        imgs = torch.from_numpy(s.flat("images")).float() / 255.0
        l, a = ensemble_vote([predict(labelers[k], imgs) for k in LABELERS])
        okn = ok.numpy()
        res["disagreement"]["pairs"][f"{i},{j}"] = {
            "test_count": counts[(i, j)], "draws": int(len(ok)), "both_confident": int(ok.sum()),
            "share": float(ok.float().mean()), "labeler_agreed": int((a & okn).sum()),
            "labeler_says_baseline": int(((l == i) & okn).sum()), "labeler_says_adda": int(((l == j) & okn).sum()),
            "labeler_says_other": int(((l >= 0) & (l != i) & (l != j) & okn).sum())}
        from trex.plots import best_indices
        idx = best_indices(s, n=10)
        drows.append(frame(imgs[idx], [None if ok[k] else ORANGE for k in idx]))
    if drows:
        grid_rows(drows, figs / "adda_disagreement.png", nrow=10)
    allshare = [v["both_confident"] for v in res["disagreement"]["pairs"].values()]
    alldraws = [v["draws"] for v in res["disagreement"]["pairs"].values()]
    res["disagreement"]["share_all"] = sum(allshare) / max(1, sum(alldraws))

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str))
    (out / "tables.md").write_text(tables(res))
    print(tables(res))
    print(f"wrote {out / 'results.json'}, {out / 'tables.md'} and figures in {figs}")


def reliability_figure(stats: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(stats), figsize=(3.2 * len(stats), 3.2), sharey=True)
    for ax, (name, st) in zip(np.atleast_1d(axes), stats.items()):
        r = st["reliability"]
        edges = np.array(r["edges"])
        acc = np.array([a if a is not None else 0 for a in r["accuracy"]])
        ax.bar(edges[:-1], acc, width=np.diff(edges), align="edge", edgecolor="k", color="#7aa6d6", label="accuracy")
        ax.plot([0, 1], [0, 1], "r--", lw=1, label="calibrated")
        ax.set_title(f"{name}: acc {st['accuracy']:.3f}, ECE {st['ece']:.3f}", fontsize=9)
        ax.set_xlabel("confidence (top class)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    np.atleast_1d(axes)[0].set_ylabel("accuracy on MNIST test")
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tables(res) -> str:
    t = res["test"]
    lines = ["| model | MNIST test accuracy | ECE (15 bins) |", "|---|---|---|"]
    for k in (*MODELS, *LABELERS):
        lines.append(f"| {k} | {t[k]['accuracy']:.4f} | {t[k]['ece']:.4f} |")
    lt = res["labeler_test"]
    lines += ["", f"Labeler ensemble on the MNIST test set: agrees on {lt['agreed_share']:.4f} of images, "
              f"accuracy {lt['accuracy_on_agreed']:.4f} on those.", ""]
    hc = res["high_confidence"]
    head = "| class | " + " | ".join(f"{m}: confident draws | kept | accuracy" for m in hc) + " |"
    lines += [head, "|---|" + "---|---|---|" * len(hc)]
    for c in [*CLASSES, "all"]:
        cells = []
        for m in hc:
            r = hc[m]["table"][c]
            acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
            cells.append(f"{r['draws']} | {r['kept']} | {acc}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    d = res["disagreement"]
    lines += ["", "| baseline says, ADDA says | test images | draws | both >= 0.9 | labelers: baseline right | "
              "ADDA right | other | not agreed |", "|---|---|---|---|---|---|---|---|"]
    for pair, v in d["pairs"].items():
        lines.append(f"| {pair} | {v['test_count']} | {v['draws']} | {v['both_confident']} ({v['share']:.3f}) | "
                     f"{v['labeler_says_baseline']} | {v['labeler_says_adda']} | {v['labeler_says_other']} | "
                     f"{v['both_confident'] - v['labeler_agreed']} |")
    lines.append(f"\nAll pairs: {d['share_all']:.3f} of kept draws have both models >= 0.9 in different classes.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
