"""The test-set baselines of paper Sec. 4.10 for one classifier: ambiguous test examples (two classes
both in [0.4, 0.6]) and confident (>= 0.85) misclassifications, beside the paper's counts.

    python scripts/testset_baseline.py --dataset mnist --classifier zoo/quick/mnist/classifier.ckpt \
        [--out docs/results] [--data-dir data] [--limit N]

Writes <out>/testset_baseline_<dataset>.md (the table, the command, the classifier's test accuracy),
<out>/testset_baseline_<dataset>.png (the examples) and <out>/testset_baseline_<dataset>.json (counts
and the examples' positions in the test set). The analysis is trex.analysis.testset; this script only loads
and writes. `--limit N` takes the first N test images (for quick checks; the paper's counts are
over all 10,000).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from trex.analysis.testset import baseline, baseline_figure, baseline_markdown  # noqa: E402
from lightning_modules.evaluate import class_probs  # noqa: E402


def load_test_set(dataset: str, data_dir) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The dataset's test images (uint8 (N, 1, H, W)), labels and class names, from the data folder
    (fetched there first through the dataset's sources when absent)."""
    from datamodules import ensure_dataset, registry
    spec = registry.get(dataset)
    ensure_dataset(spec.name, data_dir)
    x, y = spec.load(Path(data_dir), False)
    x = torch.as_tensor(x)
    return (x.unsqueeze(1) if x.dim() == 3 else x), torch.as_tensor(y).long(), list(spec.class_names)


def predict(net, images: torch.Tensor) -> np.ndarray:
    """Softmax probabilities (N, K) for uint8 images, read as pixel / 255 like the training data."""
    return class_probs(net, images.float() / 255.0).numpy()


def save_grey_png(fig, path, dpi: int) -> None:
    """The figure (grey images, black text) as an 8-bit greyscale PNG: a third of the RGBA size."""
    import io
    from PIL import Image
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    buf.seek(0)
    with Image.open(buf) as im:
        im.convert("L").save(path, optimize=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, choices=["mnist", "fashion"])
    ap.add_argument("--classifier", required=True, help="classifier checkpoint (e.g. zoo/quick/mnist/classifier.ckpt)")
    ap.add_argument("--out", default="runs/testset_baseline", help="output folder")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--limit", type=int, default=None, help="only the first N test images")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from lightning_modules.classifier import load_classifier
    net, classes = load_classifier(args.classifier)
    trained_on = getattr(net, "trained_on", None)
    if trained_on and trained_on != args.dataset:
        raise SystemExit(f"{args.classifier} was trained on {trained_on}, not {args.dataset}")
    images, labels, names = load_test_set(args.dataset, args.data_dir)
    if args.limit is not None:
        images, labels = images[:args.limit], labels[:args.limit]
    keep = np.isin(labels.numpy(), classes)  # a class-subset classifier is judged on its own classes
    images, labels = images[torch.from_numpy(keep)], labels[torch.from_numpy(keep)]
    test_index = np.flatnonzero(keep)  # position of each kept image in the test set
    probs = predict(net, images)
    result = baseline(probs, labels.numpy(), classes=classes)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"testset_baseline_{args.dataset}"
    command = "python scripts/testset_baseline.py " + " ".join(shlex.quote(a) for a in
                                                                (argv if argv is not None else sys.argv[1:]))
    header = (f"Made by `{command}`.\nClassifier: `{args.classifier}` (classes {classes}); the "
              f"{'first ' + str(args.limit) + ' ' if args.limit else ''}{args.dataset} test images"
              f"{'' if keep.all() else ' of its classes'}."
              + (" The paper's counts are over all 10,000 test images, so the comparison below is not like for "
                 "like." if args.limit else "") + f"\n\n![examples]({stem}.png)")
    md = baseline_markdown(result, args.dataset, class_names=names, header=header)
    (out / f"{stem}.md").write_text(md)
    fig = baseline_figure(images.numpy(), probs, labels.numpy(), result, class_names=names,
                          title=f"{args.dataset} test set: {args.classifier}")
    save_grey_png(fig, out / f"{stem}.png", dpi=90)
    from trex.safeload import read, weights_digest
    weights = weights_digest(read(args.classifier, "classifier"))  # a report pairs it with runs of these weights
    summary = {"command": command, "classifier": args.classifier, "weights": weights, "dataset": args.dataset,
               "n": result["n"],
               "accuracy": result["accuracy"],
               "ambiguous": {"count": result["ambiguous"]["count"],
                             "pairs": {f"{i}-{j}": n for (i, j), n in result["ambiguous"]["pairs"].items()},
                             "by_class": result["ambiguous"]["by_class"],
                             "indices": test_index[result["ambiguous"]["indices"]].tolist()},
               "misclassified": {"count": result["misclassified"]["count"],
                                 "by_label": result["misclassified"]["by_label"],
                                 "by_prediction": result["misclassified"]["by_prediction"],
                                 "indices": test_index[result["misclassified"]["indices"]].tolist()}}
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=1))
    print(md)
    return summary


if __name__ == "__main__":
    main()
