"""The paper's numbers our analyses are set beside, as /work/shared/paper-notes.md states them, each
with the table or figure it comes from. Nothing beyond the notes: where they give only a range over
a family's classes the entry is that range, and a target they do not give is left out.

Experiments are named "<dataset>/<kind>": kind one of high_confidence, ambiguous, interpolation,
failures (GAN trained without the class), novel_class, domain_adaptation; "scenes" for CLEVR, whose
targets are sample_scenes.py's catalogue names. Targets are trex target strings; "class:*" stands
for every high-confidence target of an experiment.
"""

# Mean ± std of the target confidences over a run's draws, averaged over the paper's 10 runs.
# {"mean": (...), "std": (...)} per named class; {"range": (lo, hi)} over the classes (with the
# largest std where the notes give one); {"text": ...} for a stated failure.
CONFIDENCE = {
    "mnist/high_confidence": {"class:*": {"range": (0.998, 0.999), "std_max": 0.008, "source": "Table 9"}},
    "fashion/high_confidence": {"class:*": {"range": (0.983, 0.999), "source": "Table 9"}},
    "mnist/ambiguous": {"ambiguous:1,7": {"mean": (0.49, 0.49), "std": (0.02, 0.03), "source": "Table 2"}},
    "fashion/ambiguous": {"ambiguous:0,3": {"mean": (0.48, 0.48), "std": (0.02, 0.02), "source": "Table 2"}},
    "mnist/interpolation": {  # 8 ↔ 9
        "p:8=0.5,9=0.5": {"mean": (0.477, 0.477), "std": (0.039, 0.039), "source": "Table 10"},
        "p:8=0.6,9=0.4": {"mean": (0.581, 0.374), "std": (0.04, 0.04), "source": "Tables 2, 10"},
    },
    "mnist/failures": {"class:*": {"range": (0.953, 0.990), "source": "Table 9"}},
    "fashion/failures": {"class:*": {"range": (0.886, 0.971), "source": "Table 9"},
                         "class:1": {"text": "sampling failure", "source": "Table 9"}},  # trousers
    "mnist/novel_class": {"class:*": {"range": (0.976, 0.995), "source": "Table 11"}},
    "fashion/novel_class": {"class:*": {"range": (0.991, 0.995), "source": "Table 11"}},
    "mnist/domain_adaptation": {"class:*": {"range": (0.994, 0.998), "source": "Table 11"}},
    "scenes": {
        "five_spheres": {"mean": (0.943,), "std": (0.020,), "source": "Table 9"},
        "two_blue_spheres": {"mean": (0.892,), "std": (0.245,), "source": "Table 9"},
        "failure_one_cube": {"mean": (0.929,), "std": (0.062,), "source": "Table 9"},
        "failure_two_cylinders": {"mean": (0.545,), "std": (0.230,), "source": "Table 9"},
        "novel_one_cube": {"mean": (0.983,), "std": (0.014,), "source": "Table 11"},
        "novel_five_cubes": {"mean": (0.921,), "std": (0.029,), "source": "Table 11"},
    },
}

# Ambiguous pairs Bayes-TrEx found, of 45 (Fig. 5 / Sec. 4.10).
PAIRS_FOUND = {"mnist": 38, "fashion": 28}

# Test-set baselines (Sec. 4.10, Fig. 12, Table 12): two classes in [0.4, 0.6]; top confidence
# >= 0.85 and wrong (MNIST: 60 of the 84 turned out mislabeled on inspection).
TESTSET = {
    "mnist": {"ambiguous": 12, "ambiguous_pairs": 10, "confident_misclassified": 84, "mislabeled": 60},
    "fashion": {"ambiguous": 162, "ambiguous_pairs": 12, "confident_misclassified": 802},
}


def confidence_entry(experiment: str, target: str) -> dict | None:
    """The paper's entry for one target of an experiment, the family's "class:*" entry for a
    high-confidence target it does not list alone, or None."""
    table = CONFIDENCE.get(experiment, {})
    if target in table:
        return table[target]
    return table.get("class:*") if target.startswith("class:") else None


def describe(entry: dict | None) -> str:
    """An entry as the table prints it, e.g. '0.49 ± 0.02, 0.49 ± 0.03 (Table 2)'."""
    if entry is None:
        return "-"
    if "text" in entry:
        body = entry["text"]
    elif "range" in entry:
        lo, hi = entry["range"]
        # the notes give every range to three places
        body = f"{lo:.3f}-{hi:.3f} over classes" + (f", std ≤ {entry['std_max']:g}" if "std_max" in entry else "")
    else:
        body = ", ".join(f"{m:g} ± {s:g}" for m, s in zip(entry["mean"], entry["std"]))
    return f"{body} ({entry['source']})"
