"""Target families: what confidence the sampled inputs should make the classifier show.

Each target maps class probabilities f (B, K) to a statistic u (B, m) whose observed value u*
(m,) the relaxed posterior pulls it towards (paper Eqs. 2, 6-9, 15-16). Targets speak in the
dataset's original labels; `bind(classes)` maps them onto a classifier's output columns and is
where bad targets fail, before any sampling.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from trex.errors import UserError

SIMPLEX_TOL = 1e-6


class TargetError(UserError):
    """A target that cannot be sampled: the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Target(ABC):
    """Base class. Subclasses define `labels`, `statistic`, `observed` and `ideal`."""

    sigmas: tuple[float, ...] | None = field(default=None, kw_only=True)  # per-statistic σ (None: posterior's σ)
    columns: tuple[int, ...] | None = field(default=None, kw_only=True, repr=False)  # set by bind()
    num_classes: int | None = field(default=None, kw_only=True, repr=False)

    @property
    def labels(self) -> tuple[int, ...]:
        return ()

    def bind(self, classes) -> "Target":
        """This target over a classifier whose output k means original label classes[k]."""
        classes = [int(c) for c in classes]
        missing = [c for c in self.labels if c not in classes]
        if missing:
            raise TargetError(f"{self}: class {missing[0]} is not among the classifier's classes {classes}; "
                              f"pick labels from that list (a subset classifier only knows its own classes)")
        self._check(len(classes))
        cols = tuple(classes.index(c) for c in self.labels)
        return _replace(self, columns=cols, num_classes=len(classes))

    def _check(self, num_classes: int) -> None:
        pass

    def _cols(self) -> tuple[int, ...]:
        if self.columns is None:
            raise TargetError(f"{self} is not bound to a classifier yet: call target.bind(classes)")
        return self.columns

    @abstractmethod
    def statistic(self, probs: torch.Tensor) -> torch.Tensor:
        """The statistic u (B, m) of class probabilities (B, K)."""

    @abstractmethod
    def observed(self, probs: torch.Tensor) -> torch.Tensor:
        """Its observed value u* (m,)."""

    @abstractmethod
    def ideal(self) -> torch.Tensor:
        """The confidence vector (K,) a perfect sample would have; used to measure distance to the target."""

    def distance(self, probs: torch.Tensor) -> torch.Tensor:
        """Largest absolute gap between a sample's confidences and the ideal vector, (B,)."""
        return (probs - self.ideal().to(probs)).abs().amax(-1)

    @classmethod
    def stacked(cls, targets) -> "TargetStack":
        """Several bound targets of this family as one batched statistic (see TargetStack): a population
        of targets then costs one set of tensor operations per family, not one per target."""
        return TargetStack(targets)


class TargetStack:
    """Bound targets of one family, evaluated together: row b of `probs` belongs to target which[b].
    This default loops over the targets present; families override `statistic` and `observed` with
    one batched computation."""

    def __init__(self, targets):
        self.targets = list(targets)

    def statistic(self, probs: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        out = None
        for j in torch.unique(which).tolist():
            rows = (which == j).nonzero().squeeze(1)
            v = self.targets[j].statistic(probs[rows])
            out = (v.new_empty((len(probs),) + v.shape[1:]) if out is None else out).index_put((rows,), v)
        return out

    def observed(self, probs: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        table = torch.stack([t.observed(probs) for t in self.targets])  # u* may not depend on probs' values
        return table[which]


def _replace(t: Target, **kw) -> Target:
    import dataclasses
    return dataclasses.replace(t, **kw)


@dataclass(frozen=True)
class HighConfidence(Target):
    """Confident in class i: u = f_i -> 1 (Eq. 6)."""

    i: int

    @property
    def labels(self):
        return (self.i,)

    def statistic(self, probs):
        return probs[:, self._cols()[0]].unsqueeze(-1)

    def observed(self, probs):
        return probs.new_ones(1)

    def ideal(self):
        v = torch.zeros(self.num_classes)
        v[self._cols()[0]] = 1.0
        return v

    def __str__(self):
        return f"class:{self.i}"

    @classmethod
    def stacked(cls, targets):
        return _HighStack(targets)


class _HighStack(TargetStack):
    def __init__(self, targets):
        super().__init__(targets)
        self.cols = torch.tensor([t._cols()[0] for t in targets])

    def statistic(self, probs, which):
        return probs.gather(1, self.cols.to(probs.device)[which][:, None])

    def observed(self, probs, which):
        return probs.new_ones(len(which), 1)


@dataclass(frozen=True)
class AmbiguousSubset(Target):
    """Equally confident in every class of S and in no other (generalises Eqs. 7-9).

    u1 = max_S f - min_S f -> 0 and u2 = min_S f - max_{not S} f -> 1/|S|.
    """

    members: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "members", tuple(int(m) for m in self.members))
        if len(self.members) < 2:
            raise TargetError(f"an ambiguity target needs at least two distinct classes, got {list(self.members)}")
        if len(set(self.members)) != len(self.members):
            raise TargetError(f"ambiguity between a class and itself: {list(self.members)} has repeats; "
                              f"name distinct classes, e.g. ambiguous:1,7")

    @property
    def labels(self):
        return self.members

    def _check(self, num_classes):
        if len(self.members) >= num_classes:
            raise TargetError(f"{self} names all {num_classes} classes; use the 'uniform' target instead")

    def statistic(self, probs):
        cols = list(self._cols())
        inside = probs[:, cols]
        mask = torch.ones(probs.shape[-1], dtype=torch.bool, device=probs.device)
        mask[cols] = False
        outside = probs[:, mask]
        u1 = inside.amax(-1) - inside.amin(-1)
        u2 = inside.amin(-1) - outside.amax(-1)
        return torch.stack([u1, u2], -1)

    def observed(self, probs):
        return probs.new_tensor([0.0, 1.0 / len(self.members)])

    def ideal(self):
        v = torch.zeros(self.num_classes)
        v[list(self._cols())] = 1.0 / len(self.members)
        return v

    def __str__(self):
        return "ambiguous:" + ",".join(map(str, self.members))

    @classmethod
    def stacked(cls, targets):
        return _AmbiguousStack(targets)


class _AmbiguousStack(TargetStack):
    """u1 = max_S f - min_S f and u2 = min_S f - max_{not S} f with S a per-row mask."""

    def __init__(self, targets):
        super().__init__(targets)
        k = targets[0].num_classes
        self.mask = torch.zeros(len(targets), k, dtype=torch.bool)
        for j, t in enumerate(targets):
            self.mask[j, list(t._cols())] = True
        self.size = self.mask.sum(1)

    def statistic(self, probs, which):
        inside = self.mask.to(probs.device)[which]
        big = torch.finfo(probs.dtype).max
        in_max = probs.masked_fill(~inside, -big).amax(-1)
        in_min = probs.masked_fill(~inside, big).amin(-1)
        out_max = probs.masked_fill(inside, -big).amax(-1)
        return torch.stack([in_max - in_min, in_min - out_max], -1)

    def observed(self, probs, which):
        size = self.size.to(probs.device)[which].to(probs.dtype)
        return torch.stack([torch.zeros_like(size), 1.0 / size], -1)


def Ambiguous(i: int, j: int, sigmas: tuple[float, float] | None = None) -> AmbiguousSubset:
    """Ambiguous between classes i and j: f_i = f_j = 0.5 (Eqs. 7-9; σ per statistic via `sigmas`)."""
    return AmbiguousSubset((i, j), sigmas=sigmas)


@dataclass(frozen=True)
class UniformAmbiguity(Target):
    """Equally unsure about every class: u = max f - min f -> 0 (Eqs. 15-16)."""

    def statistic(self, probs):
        return (probs.amax(-1) - probs.amin(-1)).unsqueeze(-1)

    def observed(self, probs):
        return probs.new_zeros(1)

    def bind(self, classes):
        return _replace(self, columns=(), num_classes=len(list(classes)))

    def ideal(self):
        return torch.full((self.num_classes,), 1.0 / self.num_classes)

    def __str__(self):
        return "uniform"


@dataclass(frozen=True)
class Confidence(Target):
    """Any point p of the simplex: u_k = f_k -> p_k for every class k (Eq. 2). Unnamed classes get 0."""

    p: tuple[tuple[int, float], ...]

    def __post_init__(self):
        p = self.p.items() if isinstance(self.p, dict) else self.p
        p = tuple(sorted((int(k), float(v)) for k, v in p))
        object.__setattr__(self, "p", p)
        labels = [k for k, _ in p]
        if len(set(labels)) != len(labels):
            raise TargetError(f"confidence target names a class twice: {labels}")
        neg = [(k, v) for k, v in p if v < 0 or v > 1]
        total = sum(v for _, v in p)
        if neg or abs(total - 1.0) > SIMPLEX_TOL:
            raise TargetError(f"confidence target {self} is off the probability simplex (values "
                              f"{[v for _, v in p]} sum to {total:.6g}); give values in [0, 1] that sum to 1, "
                              f"e.g. p:8=0.6,9=0.4")

    @property
    def labels(self):
        return tuple(k for k, _ in self.p)

    def statistic(self, probs):
        return probs

    def observed(self, probs):
        return self.ideal().to(probs)

    def ideal(self):
        v = torch.zeros(self.num_classes)
        for c, (_, val) in zip(self._cols(), self.p):
            v[c] = val
        return v

    def __str__(self):
        return "p:" + ",".join(f"{k}={v:g}" for k, v in self.p)

    @classmethod
    def stacked(cls, targets):
        return _ConfidenceStack(targets)


class _ConfidenceStack(TargetStack):
    def statistic(self, probs, which):
        return probs


@dataclass(frozen=True)
class Disagreement(Target):
    """Two classifiers at once, both confident and in different classes: model A in class i, model B
    in class j (the in-distribution version of a differential test).

    It reads stacked probabilities (B, 2K) = [f^A, f^B] (`trex.Stacked`), bound to the stacked class
    list (A's classes, then B's): u = (f^A_i, f^B_j) -> (1, 1). Its distance is its own,
    max(1 - f^A_i, 1 - f^B_j): the two halves are two probability vectors, not one.
    """

    i: int
    j: int

    def __post_init__(self):
        object.__setattr__(self, "i", int(self.i))
        object.__setattr__(self, "j", int(self.j))
        if self.i == self.j:
            raise TargetError(f"disagree:{self.i},{self.j} asks both models for the same class; name two "
                              f"different classes, e.g. disagree:3,5 (model A says 3, model B says 5)")

    @property
    def labels(self):
        return (self.i, self.j)

    def bind(self, classes):
        classes = [int(c) for c in classes]
        half = len(classes) // 2
        a, b = classes[:half], classes[half:]
        if len(classes) % 2 or a != b:
            raise TargetError(f"{self} needs two classifiers' probabilities stacked (trex.Stacked) with the same "
                              f"classes in each half; got the class list {classes}")
        for label, side in ((self.i, "A"), (self.j, "B")):
            if label not in a:
                raise TargetError(f"{self}: class {label} is not among model {side}'s classes {a}")
        return _replace(self, columns=(a.index(self.i), half + a.index(self.j)), num_classes=len(classes))

    def statistic(self, probs):
        return probs[:, list(self._cols())]

    def observed(self, probs):
        return probs.new_ones(2)

    def ideal(self):
        v = torch.zeros(self.num_classes)
        v[list(self._cols())] = 1.0
        return v

    def distance(self, probs):
        return (1.0 - self.statistic(probs)).amax(-1)

    def __str__(self):
        return f"disagree:{self.i},{self.j}"


def interpolation(i: int, j: int, steps: int = 11) -> list[Confidence]:
    """Targets from (p_i = 1, p_j = 0) to (p_i = 0, p_j = 1) in equal steps (paper Sec. 4.5)."""
    out = []
    for s in range(steps):
        a = round(1.0 - s / (steps - 1), 10)
        out.append(Confidence({i: a, j: round(1.0 - a, 10)}))
    return out


def parse(spec: str) -> Target:
    """Targets from strings: class:4, ambiguous:1,7, ambiguous:1,4,7, uniform, p:8=0.6,9=0.4."""
    if isinstance(spec, Target):
        return spec
    text = str(spec).strip()
    kind, _, arg = text.partition(":")
    kind = kind.strip().lower()
    try:
        if kind in ("class", "high", "confident") and arg:
            return HighConfidence(int(arg))
        if kind in ("ambiguous", "ambiguity") and arg:
            return AmbiguousSubset(tuple(int(a) for a in arg.split(",")))
        if kind == "uniform" and not arg:
            return UniformAmbiguity()
        if kind in ("disagree", "disagreement") and arg:
            i, j = (int(a) for a in arg.split(","))
            return Disagreement(i, j)
        if kind == "p" and arg:
            pairs = [a.split("=") for a in arg.split(",")]
            return Confidence({int(k): float(v) for k, v in pairs})
    except TargetError:
        raise
    except ValueError:
        pass
    raise TargetError(f"cannot read target {text!r}; write one of class:4, ambiguous:1,7, ambiguous:1,4,7, "
                      f"uniform, p:8=0.6,9=0.4, disagree:3,5 (two stacked classifiers)")


def target_specs(targets=None, target=None) -> list[Target]:
    """The targets of a run, parsed (and so validated): a list of strings, or else one target group
    given as a mapping with `kind` (class, ambiguous, subset, uniform, p, interpolation) and its values."""
    if targets:
        return [parse(t) for t in targets]
    if target is None:
        raise TargetError("no target: give a list of target strings or a target group with a `kind`")
    kinds = {
        "class": lambda: [parse(f"class:{target['i']}")],
        "ambiguous": lambda: [Ambiguous(target["i"], target["j"])],
        "subset": lambda: [AmbiguousSubset(tuple(target["members"]))],
        "uniform": lambda: [UniformAmbiguity()],
        "p": lambda: [Confidence(dict(target["p"]))],
        "interpolation": lambda: interpolation(target["i"], target["j"], target["steps"]),
        "disagree": lambda: [Disagreement(target["i"], target["j"])],
    }
    if target["kind"] not in kinds:
        raise TargetError(f"unknown target kind {target['kind']!r}; choose one of {sorted(kinds)}")
    return kinds[target["kind"]]()


def slug(target) -> str:
    """A folder name for a target: class:4 -> class_4, ambiguous:1,7 -> ambiguous_1,7."""
    return re.sub(r"[^A-Za-z0-9=.,_-]+", "_", str(target)).replace(":", "_")


def run_name(targets=None, target=None, limit: int = 3) -> str:
    """A run folder's name from the targets it runs: 'class_4+ambiguous_1,7', or the first few and a count."""
    if not targets and target is not None and target["kind"] == "interpolation":
        return f"interpolation_{target['i']}-{target['j']}"
    names = [slug(t) for t in target_specs(targets, target)]
    more = f"+{len(names) - limit}more" if len(names) > limit else ""
    return "+".join(names[:limit]) + more
