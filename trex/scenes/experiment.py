"""The paper's scene experiments (Sec. 4, Tables 2 and 9-11) as plain functions: sample one target
with RWM through trex.sample, summarise it against the scene graphs' true answers, and explain the
confident draws (SmoothGrad and object removal)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

import trex
from trex.scenes import explain, vocab
from trex.scenes.prior import ScenePrior
from trex.scenes.questions import NUM_ANSWERS, FixedQuestion, answer, parse


@dataclass(frozen=True)
class SceneTarget:
    """"p(answer to `question`) = 1" in a world of 5 objects without `exclude`, with cones if `add_cone`.
    kind: 'high confidence', 'failure' (the asked shape is excluded) or 'novel' (cones added)."""

    name: str
    question: str
    answer: int
    kind: str = "high confidence"
    exclude: tuple = field(default=())
    add_cone: bool = False
    paper: str = ""

    def prior(self, num_objects=5, **kw) -> ScenePrior:
        return ScenePrior(num_objects=num_objects, exclude=tuple(self.exclude), add_cone=self.add_cone, **kw)

    @property
    def world(self) -> str:
        parts = [f"no {', '.join(self.exclude)}s"] if self.exclude else []
        return ", ".join(parts + (["cones added"] if self.add_cone else [])) or "all shapes"


def sample_target(counter, target: SceneTarget, plan: trex.Plan, sigma=0.05, num_objects=5, scale=0.5,
                  target_accept=0.234, device="cpu", folder=None):
    """RWM over scene graphs for one target; returns (SampleSet, prior, the fixed-question classifier).
    With `folder`, a finished run of the same plan, sampler and weights there is reused."""
    prior = target.prior(num_objects, device=device)
    clf = FixedQuestion(counter, target.question).to(device)
    post = trex.RelaxedPosterior(prior, clf, f"class:{target.answer}", sigma=sigma, classes=list(range(NUM_ANSWERS)))
    sampler = trex.samplers.RWM(scale=scale, target_accept=target_accept)
    old = trex.runner.finished(folder, post, sampler, plan) if folder is not None else None
    run = old or trex.sample(post, sampler, plan)
    run.meta["scene_target"] = {"name": target.name, "question": target.question, "answer": target.answer,
                                "kind": target.kind, "world": target.world}
    return run, prior, clf


def summary(run, target: SceneTarget) -> dict:
    """Confidence in the target answer over every kept draw, and how often the scene graph agrees."""
    z = torch.as_tensor(run.latents).reshape(-1, run.latents.shape[-1])
    p = run.probs[..., target.answer].reshape(-1)
    truth = answer(z, parse(target.question)).numpy()
    right = truth == target.answer
    sure = p > 0.9
    return {"name": target.name, "question": target.question, "answer": target.answer, "kind": target.kind,
            "world": target.world, "draws": int(p.size), "mean": float(p.mean()), "std": float(p.std()),
            "above_0.9": float(sure.mean()), "true_answer_share": float(right.mean()),
            "confident_and_wrong": float((sure & ~right).mean()),
            "accept_rate": float(run.accepted.mean()), "confidence_rhat": run.meta["diagnostics"]["confidence_rhat_max"],
            "paper": target.paper, "wall_time_s": run.meta.get("wall_time_s")}


def pick(run, target: SceneTarget, n: int, wrong_only: bool) -> torch.Tensor:
    """Up to n kept draws, one per chain (its most confident), most confident first; with
    wrong_only, only draws whose scene graph's true answer differs from the target answer."""
    z = torch.as_tensor(run.latents)
    p = torch.as_tensor(run.probs[..., target.answer])
    q = parse(target.question)
    truth = answer(z.reshape(-1, z.shape[-1]), q).reshape(p.shape)
    score = torch.where(truth != target.answer, p, torch.full_like(p, -1.0)) if wrong_only else p
    best, idx = score.max(1)
    order = best.argsort(descending=True)
    order = order[best[order] > (0.9 if wrong_only else -1.0)][:n]
    return z[order, idx[order]]


def explain_draws(clf, prior, z: torch.Tensor, target: SceneTarget, samples=16, stdev=0.1):
    """Per scene: SmoothGrad map, saliency mass per object, p without each object, whether the most
    salient object is the one whose removal lowers p(answer) most (`agree`), and whether removing
    the most salient object takes p(answer) below 0.5 (`salient_flips`: several objects may each
    be decisive)."""
    img, ids = prior.renderer.render(z)
    sal = explain.smoothgrad(clf, img, target.answer, samples=samples, stdev=stdev)
    mass = explain.object_saliency(sal, ids, prior.max_objects)
    full, without = explain.removal(clf, prior, z, target.answer)
    drop = full[:, None] - without
    exists = vocab.as_slots(z)[..., vocab.EXISTS] > 0.5
    salient = torch.where(exists, mass, torch.full_like(mass, -1)).argmax(1)
    decisive = torch.nan_to_num(drop, nan=-np.inf).argmax(1)
    flips = without.gather(1, salient[:, None])[:, 0] < 0.5
    # mass favours large objects; the mean saliency per visible pixel does not
    area = explain.object_saliency(torch.ones_like(sal), ids, prior.max_objects)
    mean = torch.where(exists & (area > 0), mass / area.clamp(min=1), torch.full_like(mass, -1))
    salient_mean = mean.argmax(1)
    return {"images": img, "ids": ids, "saliency": sal, "mass": mass, "full": full, "without": without,
            "salient": salient, "decisive": decisive, "agree": salient == decisive, "salient_flips": flips,
            "salient_mean": salient_mean, "agree_mean": salient_mean == decisive}
