"""Table 8 from a zoo index: FID of each generator, ours beside the paper's, plus the share of
the left-out (or never-seen) classes among 10,000 generated images.

    python scripts/fid_table.py zoo/quick/mnist/index.json [--out docs/results/fid_mnist_quick.md]
"""
import argparse
import json
from pathlib import Path

# Paper Table 1 / 8 (Inception features); leave-one-out ranges from Table 8.
PAPER = {"mnist": {"gan": 11.83, "vae": 72.33, "gan_without": "11.6-13.6", "vae_without": "62-75"},
         "fashion": {"gan": 29.44, "vae": 87.89, "gan_without": "27.7-31.2", "vae_without": "81-92"}}


def rows(index: dict):
    for name, e in index["models"].items():
        if not (name.startswith(("gan", "vae"))):
            continue
        fid = e.get("fid") or {}
        kind = name.split("_")[0] + ("_without" if "without" in name else "")
        kind = kind if name in ("gan", "vae") or "without" in name else "none"  # the paper has no novel-GAN FID
        paper = PAPER.get(e["dataset"], {}).get(kind, "-")
        excl = e["data"].get("exclude") or []
        shares = fid.get("class_shares", {})
        left_out = sum(v for c, v in shares.items() if int(c) in excl) if excl else None
        yield {"model": name, "dataset": e["dataset"], "profile": e["profile"],
               "fid_ours": round(fid["fid_classifier"], 2) if "fid_classifier" in fid else "-",
               "fid_inception": fid.get("fid_inception") or "-", "fid_paper": paper,
               "left_out_share": f"{left_out:.4f}" if left_out is not None else "-",
               "outside_training": fid.get("share_outside_training_classes", "-"),
               "epochs": e["epochs"], "minutes": round(e["wall_time_s"] / 60, 1)}


def pairs(index: dict) -> list[str]:
    """Each GAN beside the VAE trained on the same data: the paper's ordering says GAN < VAE."""
    m = index["models"]
    out = []
    for name in m:
        if not name.startswith("gan") or name == "gan_novel":
            continue
        twin = "vae" + name[3:]
        if twin not in m:
            continue
        g, v = ((m[n].get("fid") or {}).get("fid_classifier") for n in (name, twin))
        if g is not None and v is not None:
            out.append(f"| {name} | {twin} | {g:.1f} | {v:.1f} | {'yes' if g < v else 'NO'} |")
    if not out:
        return []
    return ["| GAN | VAE | GAN FID | VAE FID | GAN better |", "|---|---|---|---|---|", *out]


def timing(index: dict) -> list[str]:
    """Minutes per model kind (median, so a run that was paused or resumed does not skew it) and the
    whole zoo as count x median: the 'time one model of each kind and sum' estimate."""
    kinds = {}
    for name, e in index["models"].items():
        kind = name.split("_without")[0]
        kinds.setdefault(kind, []).append(e["wall_time_s"] / 60)
    lines = ["| kind | models | median minutes | minutes in all |", "|---|---|---|---|"]
    total = 0.0
    for kind, ts in kinds.items():
        med = sorted(ts)[len(ts) // 2]
        total += med * len(ts)
        lines.append(f"| {kind} | {len(ts)} | {med:.1f} | {med * len(ts):.1f} |")
    lines.append(f"| **all** | {sum(map(len, kinds.values()))} | | **{total:.0f}** ({total / 60:.2f} h) |")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("index")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    index = json.loads(Path(a.index).read_text())
    table = list(rows(index))
    cols = ["model", "dataset", "profile", "fid_ours", "fid_inception", "fid_paper", "left_out_share",
            "outside_training", "epochs", "minutes"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in table]
    note = ("fid_ours: Fréchet distance of the full-data classifier's penultimate features (128-d), 10,000 "
            "test images vs 10,000 samples; not comparable in scale with the paper's Inception FID "
            "(fid_paper), only in ordering. left_out_share: share of 10,000 samples that the full-data "
            "classifier assigns to the class the generator never saw.")
    text = "\n".join(lines) + "\n\n" + note + "\n"
    pair_lines = pairs(index)
    if pair_lines:
        wins = sum(line.endswith("yes |") for line in pair_lines[2:])
        text += "\n" + "\n".join(pair_lines) + f"\n\nGAN better than its VAE in {wins} of {len(pair_lines) - 2} pairs.\n"
    text += "\n" + "\n".join(timing(index)) + "\n"
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
