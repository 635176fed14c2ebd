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


def family(name: str) -> str:
    """gan_without_3 -> gan; the other zoo names are their own family."""
    return name.split("_without")[0]


def real_floor(index: dict, name: str):
    """Real held-out images of the model's training classes that the classifier puts outside them.
    It depends on the data, not the generator, so a GAN and its VAE twin share it."""
    for n in (name, "vae" + name[3:], "gan" + name[3:]):
        v = ((index["models"].get(n) or {}).get("fid") or {}).get("real_share_outside_training_classes")
        if v is not None:
            return v
    return None


def left_out(index: dict, name: str):
    """(share of samples in classes the model never saw, its real floor); (None, None) for a model
    that saw every class. The share is computed by lightning_modules.evaluate."""
    e = index["models"][name]
    if not (e["data"].get("include") or e["data"].get("exclude")):
        return None, None
    return (e.get("fid") or {}).get("share_outside_training_classes"), real_floor(index, name)


def fmt(v, percent=False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.2f} %" if percent else f"{v:.4f}"


def rows(index: dict):
    for name, e in index["models"].items():
        if not name.startswith(("gan", "vae")):
            continue
        fid = e.get("fid") or {}
        paper_key = family(name) + ("_without" if "without" in name else "")  # gan_novel: not in the paper
        share, floor = left_out(index, name)
        yield {"model": name, "dataset": e["dataset"], "profile": e["profile"],
               "fid_ours": round(fid["fid_classifier"], 2) if "fid_classifier" in fid else "-",
               "fid_inception": fid.get("fid_inception") or "-",
               "fid_paper": PAPER.get(e["dataset"], {}).get(paper_key, "-"),
               "left_out_share": fmt(share), "real_floor": fmt(floor),
               "epochs": e["epochs"], "minutes": round(e["wall_time_s"] / 60, 1)}


def fid_pairs(index: dict) -> list[tuple[str, str, float, float]]:
    """(GAN, VAE, GAN FID, VAE FID) for each GAN whose VAE twin (same data) has an FID too."""
    m = index["models"]
    fid = {n: (e.get("fid") or {}).get("fid_classifier") for n, e in m.items()}
    return [(n, "vae" + n[3:], fid[n], fid["vae" + n[3:]]) for n in m
            if n.startswith("gan") and fid[n] is not None and fid.get("vae" + n[3:]) is not None]


def pairs(index: dict) -> list[str]:
    """The pairs as a markdown table: the paper's ordering says GAN < VAE; left-out shares beside the floor."""
    out = []
    for g, v, fg, fv in fid_pairs(index):
        (gan_share, floor), (vae_share, _) = left_out(index, g), left_out(index, v)
        out.append(f"| {g} | {v} | {fg:.1f} | {fv:.1f} | {'yes' if fg < fv else 'NO'} | {fmt(gan_share, True)} | "
                   f"{fmt(vae_share, True)} | {fmt(floor, True)} |")
    head = ["| GAN | VAE | GAN FID | VAE FID | GAN better | GAN left-out share | VAE left-out share | real floor |",
            "|---|---|---|---|---|---|---|---|"]
    return head + out if out else []


def judges(index: dict) -> str:
    """Which classifier scored the generators, and a warning when not all by the same one."""
    seen = {((e.get("fid") or {}).get("judge") or {}).get("sha256") for n, e in index["models"].items()
            if n.startswith(("gan", "vae"))}
    clf = index["models"].get("classifier") or {}
    acc = (clf.get("metrics") or {}).get("test/acc")
    about = (f"Scored by the zoo's full-data classifier ({clf.get('epochs')} epochs, test accuracy "
             f"{acc:.4f})" if acc is not None else "Scored by the zoo's full-data classifier")
    if len(seen) == 1 and None not in seen:
        return f"{about}, weights sha256 {next(iter(seen))}, for every generator."
    dataset = next(iter(index["models"].values()))["dataset"]
    return (f"{about}. WARNING: the scores come from {len(seen - {None})} classifier version(s)"
            f"{' plus unstamped ones' if None in seen else ''}; `python -m lightning_modules.zoo --dataset "
            f"{dataset} --rescore` scores them all with the current one.")


def timing(index: dict) -> list[str]:
    """Minutes per model family (median, so a run that was paused or resumed does not skew it) and
    the whole zoo as count x median: the 'time one model of each kind and sum' estimate."""
    kinds = {}
    for name, e in index["models"].items():
        kinds.setdefault(family(name), []).append(e["wall_time_s"] / 60)
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
            "real_floor", "epochs", "minutes"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in table]
    note = ("fid_ours: Fréchet distance of the full-data classifier's penultimate features (128-d), 10,000 "
            "test images vs 10,000 samples; not comparable in scale with the paper's Inception FID "
            "(fid_paper), only in ordering. left_out_share: share of 10,000 samples that the full-data "
            "classifier assigns to classes the generator never saw (the left-out class, or the novel "
            "GAN's complement). real_floor: the same share among real held-out images of the classes "
            "the generator did see, i.e. what the classifier's own mistakes contribute.")
    text = "\n".join(lines) + "\n\n" + note + " " + judges(index) + "\n"
    found = fid_pairs(index)
    if found:
        wins = sum(fg < fv for _, _, fg, fv in found)
        text += "\n" + "\n".join(pairs(index)) + f"\n\nGAN better than its VAE in {wins} of {len(found)} pairs.\n"
    text += "\n" + "\n".join(timing(index)) + "\n"
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
