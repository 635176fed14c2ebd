"""The scene question-answering network: a CNN that reads a rendered scene into a grid of cells,
each with an object density and attribute probabilities; a counting question then selects the
attributes it asks about.

    count(image, q) = Σ_cells density · Π_{filters f of q} p_cell(attribute_f = q_f)
    logits_k        = -(k - count)² / (2 τ²),   k = 0 … 10

The density integrates to one per object (it is trained on each object's centre splatted onto its
four nearest cells), so the count is extensive, and a question of any filter subset is answered
by the same maps: the network generalises to filter combinations as a whole, and one forward pass
serves every question about an image. τ is learned; it sets how sharp the answer distribution is.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F

from trex.scenes import vocab
from trex.scenes.questions import NUM_ANSWERS

GROUPS = (len(vocab.SHAPES), len(vocab.COLOURS), len(vocab.MATERIALS), len(vocab.SIZES))  # vocab.DISCRETE order
STRIDE = 4


def _conv(cin, cout, stride=1, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SceneCounter(nn.Module):
    """images (B, 3, H, W) in [0, 1] (H = W, a multiple of 4) and questions (B, 4) -> logits (B, 11)."""

    def __init__(self, width: int = 64, tau: float = 0.5):
        super().__init__()
        self.num_classes = NUM_ANSWERS
        # fine features at stride 4 (where the cells are) and context at stride 8, upsampled and joined:
        # a large object spans ~8 cells, and the context branch sees all of it at half the cost
        fine = 3 * width // 4
        self.fine = nn.Sequential(_conv(3, 32, 2), _conv(32, fine, 2))
        self.context = nn.Sequential(_conv(fine, width, 2), _conv(width, width), _conv(width, width, dilation=2))
        self.head = nn.Sequential(nn.Conv2d(fine + width, width, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, 1 + sum(GROUPS), 1))
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau)))
        with torch.no_grad():  # start near 5 objects over the 32 x 32 cells, not softplus(0) = 0.69 per cell
            self.head[-1].bias[0] = math.log(math.expm1(5 / 1024))

    def maps(self, images: torch.Tensor):
        """Per-cell density (B, h, w) and attribute log-probabilities, one (B, K, h, w) per attribute."""
        if images.shape[-1] % 8 or images.shape[-2] % 8:
            raise ValueError(f"images must be a multiple of 8 pixels on each side, got {tuple(images.shape[-2:])}")
        x = images.contiguous(memory_format=torch.channels_last)  # ~1.4x faster convolutions on a CPU
        a = self.fine(x)
        b = F.interpolate(self.context(a), scale_factor=2.0, mode="nearest")
        out = self.head(torch.cat([a, b], 1)).float().contiguous()
        density = F.softplus(out[:, 0])
        logp, start = [], 1
        for k in GROUPS:
            logp.append(out[:, start:start + k].log_softmax(1))
            start += k
        return density, logp

    def count(self, images: torch.Tensor, questions: torch.Tensor, maps=None) -> torch.Tensor:
        """Expected count (B,) of objects matching each question."""
        density, logp = maps if maps is not None else self.maps(images)
        match = torch.zeros_like(density)
        for k, lp in enumerate(logp):
            want = questions[:, k]
            picked = lp.gather(1, want.clamp(min=0)[:, None, None, None].expand(-1, 1, *lp.shape[2:]))[:, 0]
            match = match + torch.where((want >= 0)[:, None, None], picked, torch.zeros_like(picked))
        return (density * match.exp()).sum((1, 2))

    def answer_logits(self, count: torch.Tensor) -> torch.Tensor:
        k = torch.arange(NUM_ANSWERS, device=count.device, dtype=count.dtype)
        return -0.5 * ((k - count[:, None]) / self.log_tau.exp()) ** 2

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        return self.answer_logits(self.count(images, questions))


def cell_targets(scenes: torch.Tensor, camera, stride: int = STRIDE, blur: float = 1.0):
    """Training targets from the scene graphs: each existing object's projected centre spread as a
    Gaussian blob (σ = `blur` cells, over the 5 × 5 nearest cells, summing to one). A blob rather
    than a point because the count only needs the mass of each object, not where its centre is to
    a fraction of a cell. Returns the density map (B, h, w) and, per (object, cell) pair, (scene
    index, flat cell index, weight, attribute labels (N, 4))."""
    from trex.scenes.render import object_centres
    s = vocab.as_slots(scenes)
    b, m = s.shape[:2]
    g = camera.size // stride
    centre, _, _ = object_centres(s)
    rc = camera.project(centre.cpu()).to(scenes.device)
    cell = (rc + 0.5) / stride - 0.5                       # cell centres at integer coordinates
    near = cell.round()
    off = torch.arange(-2, 3, device=scenes.device, dtype=cell.dtype)
    rows = (near[..., 0:1, None] + off[:, None]).expand(b, m, 5, 5)
    cols = (near[..., 1:2, None] + off[None, :]).expand(b, m, 5, 5)
    w = torch.exp(-((rows - cell[..., 0:1, None]) ** 2 + (cols - cell[..., 1:2, None]) ** 2) / (2 * blur ** 2))
    w = (w / w.sum((-1, -2), keepdim=True)).reshape(b, m * 25)
    # an object whose blob (or centre) is outside the picture is still counted: its mass goes to the border
    flat = (rows.clamp(0, g - 1) * g + cols.clamp(0, g - 1)).long().reshape(b, m * 25)
    exists = (s[..., vocab.EXISTS] > 0.5).repeat_interleave(25, 1)
    density = torch.zeros(b, g * g, device=scenes.device).scatter_add_(1, flat, w * exists)
    labels = torch.stack([s[..., f].round().long() for f in vocab.DISCRETE], -1).repeat_interleave(25, 1)
    ib, io = exists.nonzero(as_tuple=True)
    return density.reshape(b, g, g), (ib, flat[ib, io], w[ib, io], labels[ib, io])
