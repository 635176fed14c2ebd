"""σ schedules for warm-up: a large σ first flattens the likelihood so chains can find the
level set u = u*, then σ shrinks to its final value before the kept samples start."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    """σ stays at its final value throughout."""

    def factor(self, step: int, num_warmup: int) -> float:
        return 1.0


@dataclass(frozen=True)
class Geometric:
    """σ from `start` × σ down to σ, geometrically, over the first `fraction` of warm-up."""

    start: float = 10.0
    fraction: float = 0.5

    def __post_init__(self):
        if self.start < 1 or not 0 < self.fraction <= 1:
            raise ValueError(f"need start >= 1 and 0 < fraction <= 1, got start={self.start}, "
                             f"fraction={self.fraction}")

    def factor(self, step: int, num_warmup: int) -> float:
        n = int(self.fraction * num_warmup)
        if n <= 0 or step >= n:
            return 1.0
        return self.start ** (1.0 - step / n)

    def end(self, num_warmup: int) -> int:
        return int(self.fraction * num_warmup)


def make_schedule(spec) -> Constant | Geometric:
    """'constant', 'geometric', 'geometric:10,0.5' (start factor, warm-up fraction), or a schedule."""
    if not isinstance(spec, str):
        return spec if spec is not None else Constant()
    name, _, arg = spec.partition(":")
    if name == "constant":
        return Constant()
    if name == "geometric":
        vals = [float(a) for a in arg.split(",")] if arg else []
        return Geometric(*vals)
    raise ValueError(f"unknown sigma schedule {spec!r}; use 'constant' or 'geometric[:start,fraction]'")
