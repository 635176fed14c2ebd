"""One row per sampled target, and the Markdown diagnostics table built from the rows (pure; the
entry points and the benchmarks print it)."""
from __future__ import annotations


def summary_row(res) -> dict:
    d = res.diagnostics
    conf = res.confidence_summary()
    named = [c for c, v in zip(res.meta["classes"], res.ideal) if v > 0]
    return {"target": res.meta["target"], "sampler": res.meta["sampler"], "samples": res.num_chains * res.num_samples,
            "confidence": {c: f"{conf[c][0]:.3f} ± {conf[c][1]:.3f}" for c in named},
            "mean_confidence": {c: round(conf[c][0], 4) for c in named},
            "near_0.1": round(d["near_target_0.1"], 3), "near_0.05": round(d["near_target_0.05"], 3),
            "accept": round(d.get("accept_prob_mean", d["accept_rate"]), 3), "divergences": d["divergences"],
            "warmup_divergences": d.get("warmup_divergences"),
            "rhat_max": round(d["rhat_max"], 3), "ess_bulk_min": round(d["ess_bulk_min"], 1),
            "confidence_rhat_max": round(d["confidence_rhat_max"], 3),
            "confidence_ess_bulk_min": round(d["confidence_ess_bulk_min"], 1),
            "stuck_chains": list(d.get("stuck_chains", [])), "replaced_stuck": res.meta.get("replaced_stuck", 0),
            "typical": None if d.get("typical_share") is None else round(d["typical_share"], 3),
            "wall_s": res.meta["wall_time_s"], "grad_evals": res.meta.get("grad_evals")}


def _stuck(r) -> str:
    s = r.get("stuck_chains") or []
    return "none" if not s else f"{len(s)}: chains {', '.join(map(str, s[:8]))}{' …' if len(s) > 8 else ''}"


def _div(r) -> str:
    w = r.get("warmup_divergences")
    return f"{'-' if w is None else w} / {r['divergences']}"


def format_row(r) -> str:
    typ = "" if r.get("typical") is None else f"  typical={r['typical']:.2f}"
    return (f"{r['target']:>20s}  conf {r['confidence']}  near(0.1)={r['near_0.1']:.2f}  acc={r['accept']:.2f}  "
            f"R-hat={r['rhat_max']:.2f} (conf {r['confidence_rhat_max']:.2f})  ESS={r['ess_bulk_min']:.0f}"
            f"{typ}  stuck={_stuck(r)}  {r['wall_s']:.0f}s")


def diagnostics_table(rows) -> str:
    head = ("| target | sampler | samples | confidence (mean ± std) | within 0.1 | within 0.05 | typical | "
            "mean accept prob | divergences (warm-up / kept) | max R-hat (latents) | max R-hat (confidences) | "
            "min bulk ESS (latents) | min bulk ESS (confidences) | stuck chains | wall s |")
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        conf = ", ".join(f"{c}: {v}" for c, v in r["confidence"].items())
        typ = "-" if r.get("typical") is None else f"{r['typical']:.3f}"
        lines.append(f"| {r['target']} | {r['sampler']} | {r['samples']} | {conf} | {r['near_0.1']:.3f} | "
                     f"{r['near_0.05']:.3f} | {typ} | {r['accept']:.2f} | {_div(r)} | {r['rhat_max']:.2f} | "
                     f"{r['confidence_rhat_max']:.2f} | {r['ess_bulk_min']:.0f} | {r['confidence_ess_bulk_min']:.0f} | "
                     f"{_stuck(r)} | {r['wall_s']:.0f} |")
    return "\n".join(lines) + "\n"


def markdown_table(rows: list[dict], cols: list[str]) -> str:
    """A Markdown table of `rows` over `cols` ('-' where a row has no value)."""
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "-")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
