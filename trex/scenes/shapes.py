"""Ray intersections with the four primitives in their own unit frame, vectorised over rays.

Each function takes ray origins o (N, 3) and directions d (N, 3) already moved into the object's
frame (centred, unrotated, divided by the object's radius, so t stays in world units) and returns
(t_in, t_out, normal_in): the interval of t the ray spends inside the solid (t_in > t_out: a miss)
and the outward normal where it enters. All four solids are convex, so one interval is exact.
Unit solids: sphere radius 1; cube half-side 1/√2 (CLEVR scales cubes by r/√2, so every shape's
footprint fits in the circle of radius r); cylinder radius 1, z in [-1, 1]; cone base radius 1
at z = -1, apex at z = 1.
"""
import math

import torch

CUBE_HALF = 1 / math.sqrt(2)
CONE_K2 = 0.25  # (radius per unit height)²: radius 1 over a height of 2
BIG = 1e9


def _slab(o, d, lo, hi):
    """t interval inside lo <= o + t d <= hi, for one axis."""
    d = torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
    a, b = (lo - o) / d, (hi - o) / d
    return torch.minimum(a, b), torch.maximum(a, b)


def _axis_normal(d_axis, axis, n):
    out = torch.zeros(n, 3, dtype=d_axis.dtype, device=d_axis.device)
    out[:, axis] = -torch.sign(d_axis)
    return out


def sphere(o, d):
    a = (d * d).sum(-1)
    b = (o * d).sum(-1)
    disc = b * b - a * ((o * o).sum(-1) - 1)
    sq = disc.clamp(min=0).sqrt()
    t0, t1 = (-b - sq) / a, (-b + sq) / a
    miss = disc < 0
    t0, t1 = torch.where(miss, BIG, t0), torch.where(miss, -BIG, t1)
    return t0, t1, o + t0[:, None] * d


def cube(o, d):
    ts = [_slab(o[:, k], d[:, k], -CUBE_HALF, CUBE_HALF) for k in range(3)]
    lo = torch.stack([t[0] for t in ts], -1)
    hi = torch.stack([t[1] for t in ts], -1)
    t0, axis = lo.max(-1)
    t1 = hi.min(-1).values
    normal = torch.zeros_like(o).scatter_(1, axis[:, None], -torch.sign(d.gather(1, axis[:, None])))
    return t0, t1, normal


def cylinder(o, d):
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1]
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - 1
    disc = b * b - a * c
    sq = disc.clamp(min=0).sqrt()
    vertical = a < 1e-12
    a_safe = torch.where(vertical, torch.ones_like(a), a)
    s0 = torch.where(vertical, torch.where(c <= 0, -BIG, BIG), (-b - sq) / a_safe)
    s1 = torch.where(vertical, torch.where(c <= 0, BIG, -BIG), (-b + sq) / a_safe)
    s0, s1 = torch.where(disc < 0, BIG, s0), torch.where(disc < 0, -BIG, s1)
    z0, z1 = _slab(o[:, 2], d[:, 2], -1.0, 1.0)
    t0, t1 = torch.maximum(s0, z0), torch.minimum(s1, z1)
    p = o + t0[:, None] * d
    side = torch.stack([p[:, 0], p[:, 1], torch.zeros_like(t0)], -1)
    normal = torch.where((s0 > z0)[:, None], side, _axis_normal(d[:, 2], 2, len(o)))
    return t0, t1, normal


def cone(o, d):
    w = 1 - o[:, 2]
    a = d[:, 0] ** 2 + d[:, 1] ** 2 - CONE_K2 * d[:, 2] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1] + CONE_K2 * w * d[:, 2]
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - CONE_K2 * w * w
    disc = b * b - a * c
    sq = disc.clamp(min=0).sqrt()
    a_safe = torch.where(a.abs() < 1e-12, torch.full_like(a, 1e-12), a)
    r0, r1 = (-b - sq) / a_safe, (-b + sq) / a_safe
    lo, hi = torch.minimum(r0, r1), torch.maximum(r0, r1)
    z0, z1 = _slab(o[:, 2], d[:, 2], -1.0, 1.0)
    # inside the double cone: between the roots (a > 0) or outside them (a < 0); the slab keeps only
    # the lower nappe, and the solid is convex, so at most one piece survives
    up = a > 0
    first = ~up & (z0 <= torch.minimum(lo, z1))        # a < 0: the piece (-inf, lo]
    enter = torch.where(up, torch.maximum(lo, z0), torch.where(first, z0, torch.maximum(hi, z0)))
    leave = torch.where(up, torch.minimum(hi, z1), torch.where(first, torch.minimum(lo, z1), z1))
    from_cap = torch.where(up, z0 > lo, first | (z0 > hi))
    miss = (disc < 0) & up
    enter, leave = torch.where(miss, BIG, enter), torch.where(miss, -BIG, leave)
    p = o + enter[:, None] * d
    side = torch.stack([p[:, 0], p[:, 1], CONE_K2 * (1 - p[:, 2])], -1)
    normal = torch.where(from_cap[:, None], _axis_normal(d[:, 2], 2, len(o)), side)
    return enter, leave, normal


BY_INDEX = (cube, sphere, cylinder, cone)  # in vocab.SHAPES order


def intersect(shape: torch.Tensor, o: torch.Tensor, d: torch.Tensor):
    """Dispatch each ray to its object's shape (shape (N,) long): (t_in, t_out, unit normal_in)."""
    t0 = torch.full_like(o[:, 0], BIG)
    t1 = torch.full_like(o[:, 0], -BIG)
    normal = torch.zeros_like(o)
    for k, fn in enumerate(BY_INDEX):
        sel = (shape == k).nonzero().squeeze(1)
        if len(sel):
            a, b, n = fn(o[sel], d[sel])
            t0[sel], t1[sel], normal[sel] = a, b, n
    return t0, t1, torch.nn.functional.normalize(normal, dim=-1)
