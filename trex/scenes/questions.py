"""Counting questions ("how many [size] [colour] [material] [shape]s?") over scene tensors.

A question is four filter indices in vocab.DISCRETE order (shape, colour, material, size), -1 where
the question does not filter: "how many blue spheres?" is (sphere, blue, -1, -1). The answer is
exact from the scene graph, so training data needs no labelling.
"""
from __future__ import annotations

import torch
from torch import nn

from trex.errors import UserError
from trex.scenes import vocab
from trex.scenes.vocab import EXISTS

NUM_ANSWERS = 11                                    # counts 0 ... 10
WORDS = (vocab.SHAPES, vocab.COLOURS, vocab.MATERIALS, vocab.SIZES)


def parse(text: str) -> torch.Tensor:
    """'blue spheres' / 'how many large metal cubes?' / 'objects' -> (4,) long question."""
    q = torch.full((4,), -1, dtype=torch.long)
    words = text.lower().replace("?", " ").replace("how many", " ").split()
    for w in words:
        if w in ("objects", "object", "things", "thing", "are", "there"):
            continue
        stem = w[:-1] if w.endswith("s") and w[:-1] in vocab.SHAPES else w
        hits = [(k, names.index(stem)) for k, names in enumerate(WORDS) if stem in names]
        if not hits:
            raise UserError(f"question {text!r}: unknown word {w!r}; use sizes {vocab.SIZES}, colours {vocab.COLOURS}, "
                            f"materials {vocab.MATERIALS}, shapes {vocab.SHAPES}")
        k, i = hits[0]
        if q[k] >= 0:
            raise UserError(f"question {text!r} names two {('shapes', 'colours', 'materials', 'sizes')[k]}")
        q[k] = i
    return q


def text(q: torch.Tensor) -> str:
    """(4,) question -> 'how many blue spheres?'."""
    shape, colour, material, size = (int(v) for v in q)
    parts = [vocab.SIZES[size] if size >= 0 else None, vocab.COLOURS[colour] if colour >= 0 else None,
             vocab.MATERIALS[material] if material >= 0 else None]
    noun = vocab.SHAPES[shape] + "s" if shape >= 0 else "objects"
    return "how many " + " ".join([p for p in parts if p] + [noun]) + "?"


def answer(z: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Exact counts (B,) for scenes z (B, D) and questions q (B, 4) or (4,)."""
    s = vocab.as_slots(z)
    q = q.to(z.device).expand(s.shape[0], 4)
    match = s[..., EXISTS] > 0.5
    for k, field in enumerate(vocab.DISCRETE):
        want = q[:, k:k + 1]
        match &= (want < 0) | (s[..., field].round().long() == want)
    return match.sum(-1)


def random_questions(z: torch.Tensor, per_scene: int, generator=None, shapes=(0, 1, 2)) -> torch.Tensor:
    """(B, per_scene, 4) questions: half describe an existing object by a random subset of its
    attributes (answers >= 1), half draw each filter at random (often answer 0)."""
    s = vocab.as_slots(z)
    b, m = s.shape[:2]
    kw = dict(generator=generator, device=z.device)
    # of an existing object: pick one by weighting slots with their existence flag
    pick = torch.multinomial(s[..., EXISTS].clamp(min=1e-6).repeat_interleave(per_scene, 0), 1, generator=generator)
    obj = s.repeat_interleave(per_scene, 0).gather(1, pick[..., None].expand(-1, 1, s.shape[-1]))[:, 0]
    of_object = torch.stack([obj[:, f].round().long() for f in vocab.DISCRETE], -1)
    shape_ids = torch.tensor(shapes, device=z.device)
    free = torch.stack([shape_ids[torch.randint(len(shapes), (b * per_scene,), **kw)],
                        torch.randint(len(vocab.COLOURS), (b * per_scene,), **kw),
                        torch.randint(len(vocab.MATERIALS), (b * per_scene,), **kw),
                        torch.randint(len(vocab.SIZES), (b * per_scene,), **kw)], -1)
    use_object = torch.rand(b * per_scene, 1, **kw) < 0.5
    q = torch.where(use_object, of_object, free)
    keep = torch.rand(b * per_scene, 4, **kw) < 0.5
    return torch.where(keep, q, torch.full_like(q, -1)).reshape(b, per_scene, 4)


class FixedQuestion(nn.Module):
    """A question-answering network net(images, questions) -> logits over answers, asked one fixed
    question: a plain classifier images -> (B, 11) logits, so "p(5 spheres) = 1" is `class:5`."""

    def __init__(self, net: nn.Module, question):
        super().__init__()
        self.net = net
        q = parse(question) if isinstance(question, str) else torch.as_tensor(question, dtype=torch.long)
        self.register_buffer("question", q.reshape(4))
        self.num_classes = NUM_ANSWERS

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images, self.question.expand(images.shape[0], 4))

    def __repr__(self):
        return f"FixedQuestion({text(self.question)!r})"
