"""The scene-graph prior p(scene), its sampler and its random-walk proposal, in the distribution
protocol of trex.LatentGaussian (dim, device, dtype, sample_prior, log_prior, decode, propose), so
trex.sample runs RWM over scenes unchanged.

The prior over the full (M slots × FIELDS) tensor is

    p(z) ∝ p(flags) · Π_slots p_obj(attributes) · 1[no two existing objects overlap]

with the object count n uniform on [lo, hi], the set of existing slots uniform given n, and every
attribute uniform over its allowed values (x, y in [-3, 3], rotation in [0, 2π)). Dormant slots
(exists = 0) keep attributes drawn from p_obj too. That augmentation is what makes the
add/remove move simple: adding an object flips a dormant slot on, keeping its attributes, and
removing one flips it off; the flip is a symmetric proposal and the attributes' density is the same
on both sides, so the MH ratio is the prior ratio with no reversible-jump Jacobian.
"""
from __future__ import annotations

import math

import torch

from trex.errors import UserError
from trex.scenes import vocab
from trex.scenes.vocab import BOUND, COLOUR, EXISTS, FIELDS, MATERIAL, RADIUS, ROT, SHAPE, SIZE, TWO_PI, X, Y


class ScenePrior:
    """Scenes of `num_objects` objects (an int, or (lo, hi) for a varying count) in max_objects slots.

    shapes: the shapes the world has (default cube, sphere, cylinder); exclude: shapes taken out
    (high-confidence failures: a world without cubes); add_cone: the novel class.
    min_gap: the smallest distance allowed between two objects' footprints (CLEVR uses 0.25).
    Proposal (see `propose`): x, y move by N(0, (scale·pos_step)²) reflected at the border, rotation
    by N(0, (scale·rot_step)²) around the circle, each discrete attribute of each slot is redrawn
    uniformly with probability min(0.5, scale·discrete_rate), and (varying count only) one slot's
    existence flips with probability min(0.5, scale·flip_rate). One knob, the RWM scale, sets the
    size of every move, so RWM's adaptation tunes all of them.
    """

    def __init__(self, num_objects=5, max_objects: int | None = None, shapes=("cube", "sphere", "cylinder"),
                 exclude=(), add_cone: bool = False, min_gap: float = 0.1, renderer=None, pos_step: float = 1.0,
                 rot_step: float = math.pi, discrete_rate: float = 0.1, flip_rate: float = 0.2,
                 device="cpu", dtype=torch.float32):
        lo, hi = (num_objects, num_objects) if isinstance(num_objects, int) else tuple(int(v) for v in num_objects)
        self.max_objects = int(max_objects or hi)
        if not 1 <= lo <= hi <= self.max_objects:
            raise UserError(f"num_objects {num_objects} must be n or (lo, hi) with 1 <= lo <= hi <= max_objects "
                            f"({self.max_objects})")
        self.lo, self.hi = lo, hi
        names = list(shapes) + (["cone"] if add_cone and "cone" not in shapes else [])
        unknown = [s for s in list(names) + list(exclude) if s not in vocab.SHAPES]
        if unknown:
            raise UserError(f"unknown shape {unknown[0]!r}; shapes are {', '.join(vocab.SHAPES)}")
        names = [s for s in names if s not in exclude]
        if not names:
            raise UserError(f"excluding {list(exclude)} leaves no shapes")
        self.shapes = tuple(names)
        self.device, self.dtype = torch.device(device), dtype
        self.shape_ids = torch.tensor([vocab.SHAPES.index(s) for s in names], device=self.device, dtype=dtype)
        self.min_gap = float(min_gap)
        self.pos_step, self.rot_step = float(pos_step), float(rot_step)
        self.discrete_rate, self.flip_rate = float(discrete_rate), float(flip_rate)
        if renderer is None:
            from trex.scenes.render import Renderer
            renderer = Renderer(device=self.device)
        self.renderer = renderer
        # number of values of each discrete attribute, in vocab.DISCRETE order
        self.levels = (len(names), len(vocab.COLOURS), len(vocab.MATERIALS), len(vocab.SIZES))
        per_slot = -math.log(4 * BOUND ** 2) - math.log(TWO_PI) - sum(math.log(k) for k in self.levels)
        counts = torch.arange(self.max_objects + 1, dtype=torch.float64)
        log_choose = (torch.lgamma(torch.tensor(self.max_objects + 1.0)) - torch.lgamma(counts + 1)
                      - torch.lgamma(self.max_objects - counts + 1))
        in_range = (counts >= lo) & (counts <= hi)
        self._log_p_flags = torch.where(in_range, -math.log(hi - lo + 1) - log_choose, -math.inf).to(self.device)
        self._log_slots = self.max_objects * per_slot

    @property
    def dim(self) -> int:
        return self.max_objects * FIELDS

    def __repr__(self):
        n = self.lo if self.lo == self.hi else (self.lo, self.hi)
        return f"ScenePrior(num_objects={n}, shapes={self.shapes})"

    # --- density -----------------------------------------------------------------------------------------
    def valid(self, z: torch.Tensor) -> torch.Tensor:
        """(B,) bool: every attribute allowed, the count in range, no two existing objects overlapping."""
        s = vocab.as_slots(z)
        if s.shape[1] != self.max_objects:
            raise ValueError(f"scenes have {s.shape[1]} slots, this prior {self.max_objects}")
        ex = s[..., EXISTS]
        ok = ((ex == 0) | (ex == 1)).all(-1)
        n = ex.sum(-1)
        ok &= (n >= self.lo) & (n <= self.hi)
        ok &= (s[..., X].abs() <= BOUND).all(-1) & (s[..., Y].abs() <= BOUND).all(-1)
        ok &= ((s[..., ROT] >= 0) & (s[..., ROT] < TWO_PI)).all(-1)
        ok &= torch.isin(s[..., SHAPE], self.shape_ids).all(-1)
        for field, k in zip(vocab.DISCRETE[1:], self.levels[1:]):
            v = s[..., field]
            ok &= ((v >= 0) & (v < k) & (v == v.round())).all(-1)
        return ok & ~self.overlapping(s)

    def overlapping(self, s: torch.Tensor) -> torch.Tensor:
        """(B,) bool: two existing objects closer than the sum of their radii plus min_gap."""
        r = RADIUS.to(s)[s[..., SIZE].clamp(0, 1).long()]
        xy = s[..., [X, Y]]
        d = (xy[:, :, None] - xy[:, None]).norm(dim=-1)
        need = r[:, :, None] + r[:, None] + self.min_gap
        both = (s[:, :, None, EXISTS] > 0.5) & (s[:, None, :, EXISTS] > 0.5)
        both &= ~torch.eye(s.shape[1], dtype=torch.bool, device=s.device)
        return ((d < need) & both).flatten(1).any(-1)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """(B,) log p(z) up to the constant of the no-overlap rule; -inf for a scene the prior excludes."""
        n = vocab.as_slots(z)[..., EXISTS].sum(-1).round().long().clamp(0, self.max_objects)
        lp = self._log_p_flags.to(z)[n] + self._log_slots
        return torch.where(self.valid(z), lp, torch.full_like(lp, -math.inf))

    # --- sampling ----------------------------------------------------------------------------------------
    def _draw(self, n: int, generator=None) -> torch.Tensor:
        """n scenes from the prior without the no-overlap rule."""
        m, kw = self.max_objects, dict(generator=generator, device=self.device)
        s = torch.zeros(n, m, FIELDS, device=self.device, dtype=self.dtype)
        count = torch.randint(self.lo, self.hi + 1, (n, 1), **kw)
        rank = torch.rand(n, m, **kw).argsort(-1).argsort(-1)  # a uniform random subset of `count` slots
        s[..., EXISTS] = (rank < count).to(self.dtype)
        s[..., X] = (torch.rand(n, m, **kw) * 2 - 1) * BOUND
        s[..., Y] = (torch.rand(n, m, **kw) * 2 - 1) * BOUND
        s[..., ROT] = torch.rand(n, m, **kw) * TWO_PI
        s[..., SHAPE] = self.shape_ids[torch.randint(len(self.shape_ids), (n, m), **kw)]
        for field, k in zip(vocab.DISCRETE[1:], self.levels[1:]):
            s[..., field] = torch.randint(k, (n, m), **kw).to(self.dtype)
        s[..., ROT] = s[..., ROT].clamp(max=TWO_PI * (1 - 1e-7))
        return s.reshape(n, -1)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n scenes from p(z), by rejecting whole scenes that overlap (exact for the density above)."""
        out, have = [], 0
        for _ in range(10_000):
            z = self._draw(max(2 * (n - have), 64), generator)
            z = z[self.valid(z)]
            out.append(z)
            have += len(z)
            if have >= n:
                return torch.cat(out)[:n]
        raise UserError(f"{self}: almost every drawn scene overlaps; use fewer objects or a smaller min_gap")

    def propose(self, z: torch.Tensor, scale: torch.Tensor, generator: torch.Generator | None = None):
        """A symmetric random-walk move (log proposal ratio 0); see the class docstring."""
        b, m = z.shape[0], self.max_objects
        kw = dict(generator=generator, device=z.device, dtype=z.dtype)
        s = vocab.as_slots(z).clone()
        sc = scale.to(z).reshape(b, 1)
        s[..., X] = _reflect(s[..., X] + sc * self.pos_step * torch.randn(b, m, **kw))
        s[..., Y] = _reflect(s[..., Y] + sc * self.pos_step * torch.randn(b, m, **kw))
        s[..., ROT] = torch.remainder(s[..., ROT] + sc * self.rot_step * torch.randn(b, m, **kw), TWO_PI)
        s[..., ROT] = torch.where(s[..., ROT] >= TWO_PI, torch.zeros_like(s[..., ROT]), s[..., ROT])
        p = (sc * self.discrete_rate).clamp(max=0.5)
        for field, k in zip(vocab.DISCRETE, self.levels):
            redraw = torch.rand(b, m, **kw) < p
            new = torch.randint(k, (b, m), generator=generator, device=z.device)
            new = self.shape_ids[new] if field == SHAPE else new.to(z.dtype)
            s[..., field] = torch.where(redraw, new, s[..., field])
        if self.hi > self.lo:  # add or remove one object: flip one slot, chosen uniformly
            flip = torch.rand(b, **kw) < (sc[:, 0] * self.flip_rate).clamp(max=0.5)
            slot = torch.randint(m, (b,), generator=generator, device=z.device)
            onehot = torch.nn.functional.one_hot(slot, m).bool() & flip[:, None]
            s[..., EXISTS] = torch.where(onehot, 1 - s[..., EXISTS], s[..., EXISTS])
        return s.reshape(b, -1), torch.zeros(b, device=z.device, dtype=z.dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Rendered images (B, 3, H, W) in [0, 1]."""
        return self.renderer(z)


def _reflect(x: torch.Tensor, bound: float = BOUND) -> torch.Tensor:
    """Fold x into [-bound, bound] by reflection at the walls: a reflected Gaussian walk stays symmetric."""
    period = 4 * bound
    y = torch.remainder(x + bound, period)
    return torch.where(y > 2 * bound, period - y, y) - bound
