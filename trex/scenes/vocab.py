"""The scene vocabulary (CLEVR's attributes) and how a scene is laid out as a flat float tensor.

A scene of up to M objects is a (M * FIELDS,) float vector, so the runner's (chains, D) position
works unchanged: per slot [exists, x, y, rotation, shape, colour, material, size], the discrete
attributes stored as their index. A slot whose `exists` is 0 is dormant: its attributes are kept
(and moved) but it is not in the scene; see trex/scenes/prior.py for why.
"""
import math

import torch

SHAPES = ("cube", "sphere", "cylinder", "cone")          # cone: the novel class, off by default
COLOURS = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
COLOUR_RGB = torch.tensor([[87, 87, 87], [173, 35, 35], [42, 75, 215], [29, 105, 20], [129, 74, 25],
                           [129, 38, 192], [41, 208, 208], [255, 238, 51]], dtype=torch.float32) / 255
MATERIALS = ("rubber", "metal")
SIZES = ("large", "small")
RADIUS = torch.tensor([0.7, 0.35])                       # CLEVR's object radii, by size index

FIELDS = 8
EXISTS, X, Y, ROT, SHAPE, COLOUR, MATERIAL, SIZE = range(FIELDS)
DISCRETE = (SHAPE, COLOUR, MATERIAL, SIZE)
BOUND = 3.0                                              # x, y in [-BOUND, BOUND]
TWO_PI = 2 * math.pi


def as_slots(z: torch.Tensor) -> torch.Tensor:
    """(B, M * FIELDS) -> (B, M, FIELDS)."""
    if z.dim() != 2 or z.shape[-1] % FIELDS:
        raise ValueError(f"a scene batch is (B, M * {FIELDS}); got shape {tuple(z.shape)}")
    return z.reshape(z.shape[0], -1, FIELDS)


def make_scene(objects, max_objects: int | None = None) -> torch.Tensor:
    """One encoded scene from dicts like {"shape": "sphere", "colour": "blue", "material": "metal",
    "size": "large", "x": 0.0, "y": 1.0, "rotation": 0.0} (missing: rubber, large, gray, rotation 0)."""
    m = max_objects or len(objects)
    if len(objects) > m:
        raise ValueError(f"{len(objects)} objects do not fit in {m} slots")
    z = torch.zeros(m, FIELDS)
    for i, o in enumerate(objects):
        z[i, EXISTS] = 1
        z[i, X], z[i, Y] = float(o["x"]), float(o["y"])
        z[i, ROT] = float(o.get("rotation", 0.0)) % TWO_PI
        z[i, SHAPE] = SHAPES.index(o["shape"])
        z[i, COLOUR] = COLOURS.index(o.get("colour", "gray"))
        z[i, MATERIAL] = MATERIALS.index(o.get("material", "rubber"))
        z[i, SIZE] = SIZES.index(o.get("size", "large"))
    return z.reshape(-1)


def describe(z: torch.Tensor) -> list[str]:
    """The objects of one encoded scene (D,) as words: 'large blue metal sphere at (0.1, -2.0)'."""
    out = []
    for s in z.reshape(-1, FIELDS):
        if s[EXISTS] > 0.5:
            out.append(f"{SIZES[int(s[SIZE])]} {COLOURS[int(s[COLOUR])]} {MATERIALS[int(s[MATERIAL])]} "
                       f"{SHAPES[int(s[SHAPE])]} at ({float(s[X]):.1f}, {float(s[Y]):.1f})")
    return out
