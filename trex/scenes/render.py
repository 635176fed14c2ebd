"""A batched, deterministic ray caster for scene tensors: the decode step of the scene prior.

Fixed pinhole camera, ground plane z = 0, one directional light with hard shadows, Lambert
shading plus a Blinn-Phong highlight; metal also mirrors a sky-to-ground gradient and has a
sharp highlight, rubber is matte. Speed comes from culling: every (scene, pixel, object) triple is
first tested against the object's bounding sphere with one batched matrix product, and only the
few triples that pass get the exact intersection (trex/scenes/shapes.py). Primary rays and their
ground hits are the same for every scene and are computed once.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trex.scenes import shapes, vocab
from trex.scenes.vocab import COLOUR, EXISTS, MATERIAL, RADIUS, ROT, SHAPE, SIZE, X, Y

GROUND_RGB = (0.62, 0.62, 0.60)
SKY_RGB = (0.80, 0.82, 0.85)


def object_centres(s: torch.Tensor):
    """Slots (B, M, FIELDS) -> each object's 3-D centre (B, M, 3), radius (B, M) and shape index (B, M)."""
    r = RADIUS.to(s)[s[..., SIZE].clamp(0, 1).long()]
    shape = s[..., SHAPE].round().long().clamp(0, len(vocab.SHAPES) - 1)
    height = torch.where(shape == vocab.SHAPES.index("cube"), r * shapes.CUBE_HALF, r)  # resting on the ground
    return torch.stack([s[..., X], s[..., Y], height], -1), r, shape


class Camera:
    """A pinhole camera at `eye` looking at `target` (z up), square image of `size` pixels."""

    def __init__(self, eye=(0.0, -8.5, 10.0), target=(0.0, 0.3, 0.0), fov_deg: float = 36.0, size: int = 128):
        self.eye = torch.tensor(eye, dtype=torch.float32)
        fwd = F.normalize(torch.tensor(target, dtype=torch.float32) - self.eye, dim=0)
        right = F.normalize(torch.linalg.cross(fwd, torch.tensor([0.0, 0.0, 1.0])), dim=0)
        self.fwd, self.right, self.up = fwd, right, torch.linalg.cross(right, fwd)
        self.tan = math.tan(math.radians(fov_deg) / 2)
        self.size = int(size)
        corner = math.atan(self.tan * math.sqrt(2))
        self.stretch = 1 / math.cos(corner) ** 2  # the most a sphere's image stretches, in a corner

    def rays(self) -> torch.Tensor:
        """Unit ray directions (H * W, 3) through the pixel centres, row-major from the top left."""
        n = self.size
        c = (torch.arange(n, dtype=torch.float32) + 0.5) / n * 2 - 1
        v, u = torch.meshgrid(-c, c, indexing="ij")
        d = self.fwd + self.tan * (u.reshape(-1, 1) * self.right + v.reshape(-1, 1) * self.up)
        return F.normalize(d, dim=-1)

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """World points (..., 3) -> (row, col) pixel coordinates (..., 2), pixel centres at integers."""
        rel = points - self.eye
        depth = rel @ self.fwd
        u = (rel @ self.right) / depth / self.tan
        v = (rel @ self.up) / depth / self.tan
        return torch.stack([(1 - v) / 2 * self.size - 0.5, (u + 1) / 2 * self.size - 0.5], -1)


class Renderer:
    """render(z) for scene tensors z (B, M * FIELDS) -> images (B, 3, size, size) in [0, 1].

    `chunk` scenes go through at a time (the culling tensors are chunk × pixels × objects).
    """

    def __init__(self, size: int = 128, camera: Camera | None = None, light=(-0.55, -0.35, 0.76),
                 ambient: float = 0.38, device="cpu", chunk: int = 64):
        self.camera = camera or Camera(size=size)
        if self.camera.size != size:
            raise ValueError(f"camera size {self.camera.size} differs from render size {size}")
        self.size, self.device, self.chunk, self.ambient = size, torch.device(device), chunk, ambient
        self.eye = self.camera.eye.to(self.device)
        self.dirs = self.camera.rays().to(self.device)
        self.light = F.normalize(torch.tensor(light, dtype=torch.float32), dim=0).to(self.device)
        dz = self.dirs[:, 2]
        self.t_ground = torch.where(dz < -1e-6, -self.eye[2] / dz.clamp(max=-1e-6), torch.full_like(dz, math.inf))
        self.palette = vocab.COLOUR_RGB.to(self.device)
        self.ground = torch.tensor(GROUND_RGB, device=self.device)
        self.sky = torch.tensor(SKY_RGB, device=self.device)
        # the empty scene, computed once: ground points and their colour lit and in shadow (sky: no ground)
        self.finite = torch.isfinite(self.t_ground)
        self.ground_point = self.eye + torch.where(self.finite, self.t_ground, 0.0)[:, None] * self.dirs
        self.ground_point[:, 2] = 1e-3
        lit = self.ground * (ambient + 0.72 * self.light[2].clamp(min=0))
        self.ground_lit = torch.where(self.finite[:, None], lit, self.sky)
        self.ground_dark = self.ground * ambient

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.render(z)[0]

    def render(self, z: torch.Tensor):
        """(images (B, 3, H, W), object index per pixel (B, H, W) long, -1 for ground or sky)."""
        z = z.to(self.device, torch.float32)
        parts = [self._render(c) for c in z.split(self.chunk)] if len(z) else [self._render(z)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _objects(self, s):
        centre, r, shape = object_centres(s)
        cube = shape == vocab.SHAPES.index("cube")
        sphere = shape == vocab.SHAPES.index("sphere")
        bound = torch.where(cube, r * shapes.CUBE_HALF * math.sqrt(3), torch.where(sphere, r, r * math.sqrt(2)))
        return centre, r, shape, bound, s[..., EXISTS] > 0.5

    def _local(self, s, idx_b, idx_m, origins, dirs, centre, r):
        """Rays of selected (scene, object) pairs in that object's unit frame, and cos θ, sin θ."""
        th = s[idx_b, idx_m, ROT]
        cos, sin = th.cos(), th.sin()
        scale = r[idx_b, idx_m][:, None]

        def rot(v):  # rotate by -θ about z
            return torch.stack([cos * v[:, 0] + sin * v[:, 1], -sin * v[:, 0] + cos * v[:, 1], v[:, 2]], -1)
        return rot(origins - centre[idx_b, idx_m]) / scale, rot(dirs) / scale, cos, sin

    def _circle(self, centre, radius):
        """Pixel box (row lo, row hi, col lo, col hi) that holds the image of each sphere (B, M)."""
        rc = self.camera.project(centre)
        dist = (centre - self.eye).norm(dim=-1)
        half = torch.asin((radius / dist).clamp(max=0.999))
        # off the optical axis a sphere's image stretches radially, by at most 1/cos² of the corner angle
        px = self.size / 2 * torch.tan(half) / self.camera.tan * self.camera.stretch + 1
        return rc[..., 0] - px, rc[..., 0] + px, rc[..., 1] - px, rc[..., 1] + px

    def _pixels(self, box, exists):
        """(scene, pixel, object) index triples for every pixel inside each object's box."""
        n = self.size
        lo_r, hi_r = box[0].floor().clamp(0, n - 1).long(), box[1].ceil().clamp(0, n - 1).long()
        lo_c, hi_c = box[2].floor().clamp(0, n - 1).long(), box[3].ceil().clamp(0, n - 1).long()
        seen = exists & (box[1] >= 0) & (box[0] <= n - 1) & (box[3] >= 0) & (box[2] <= n - 1)
        h, w = hi_r - lo_r + 1, hi_c - lo_c + 1
        if not seen.any():
            e = torch.zeros(0, dtype=torch.long, device=self.device)
            return e, e, e
        hm, wm = int(h[seen].max()), int(w[seen].max())
        dr = torch.arange(hm, device=self.device)[:, None]
        dc = torch.arange(wm, device=self.device)[None, :]
        inside = (dr < h[..., None, None]) & (dc < w[..., None, None]) & seen[..., None, None]
        ib, im, i, j = inside.nonzero(as_tuple=True)
        return ib, (lo_r[ib, im] + i) * n + lo_c[ib, im] + j, im

    def _render(self, z):
        s = vocab.as_slots(z)
        b_n, p_n = s.shape[0], self.dirs.shape[0]
        centre, r, shape, bound, exists = self._objects(s)
        # primary rays: only the pixels in each object's screen box get the exact test
        ib, ip, im = self._pixels(self._circle(centre, bound), exists)
        o, d, cos, sin = self._local(s, ib, im, self.eye.expand(len(ib), 3), self.dirs[ip], centre, r)
        t0, t1, n_loc = shapes.intersect(shape[ib, im], o, d)
        hit = (t0 <= t1) & (t0 > 0)
        ib, ip, im, t0, n_loc, cos, sin = ib[hit], ip[hit], im[hit], t0[hit], n_loc[hit], cos[hit], sin[hit]
        key = ib * p_n + ip
        depth = self.t_ground.repeat(b_n)
        depth.scatter_reduce_(0, key, t0, "amin")
        win = t0 == depth[key]
        key, ib, ip, im = key[win], ib[win], ip[win], im[win]
        ids = torch.full((b_n * p_n,), -1, dtype=torch.long, device=self.device)
        ids[key] = im
        n_loc, cos, sin = n_loc[win], cos[win], sin[win]
        normal = torch.stack([cos * n_loc[:, 0] - sin * n_loc[:, 1], sin * n_loc[:, 0] + cos * n_loc[:, 1],
                              n_loc[:, 2]], -1)
        # where each visible point is: ground points are fixed, object points from their depth
        point = self.ground_point.repeat(b_n, 1)
        point[key] = self.eye + depth[key, None] * self.dirs[ip] + 1e-3 * normal
        shadow = self._shadow(s, point, ids, centre, r, shape, bound, exists, b_n)
        img = torch.where(shadow[:, None], self.ground_dark, self.ground_lit.repeat(b_n, 1))
        img[key] = self._shade(s[ib, im], normal, self.dirs[ip], ~shadow[key])
        n = self.size
        return img.reshape(b_n, n, n, 3).permute(0, 3, 1, 2).contiguous(), ids.reshape(b_n, n, n)

    def _shadow(self, s, point, ids, centre, r, shape, bound, exists, b_n):
        """(B * P,) bool: the ray from each visible point towards the light meets another object.

        Candidates: the pixels in the screen box of each object's shadow volume, the capsule swept by
        its bounding sphere along -light down to the ground."""
        light = self.light
        reach = (centre[..., 2] + bound) / light[2]
        far = centre - reach[..., None] * light
        a, b = self._circle(centre, bound), self._circle(far, bound)
        box = (torch.minimum(a[0], b[0]), torch.maximum(a[1], b[1]), torch.minimum(a[2], b[2]),
               torch.maximum(a[3], b[3]))
        ib, ip, im = self._pixels(box, exists)
        key = ib * self.dirs.shape[0] + ip
        keep = (ids[key] != im) & self.finite[ip]  # convex objects never shadow themselves
        ib, im, key = ib[keep], im[keep], key[keep]
        out = torch.zeros(len(point), dtype=torch.bool, device=self.device)
        if len(ib):
            o, d, _, _ = self._local(s, ib, im, point[key], light.expand(len(ib), 3), centre, r)
            t0, t1, _ = shapes.intersect(shape[ib, im], o, d)
            blocked = (t0 <= t1) & (t1 > 0)
            out[key[blocked]] = True
        return out

    def _shade(self, obj, normal, dirs, lit):
        """Colours (N, 3) of N object pixels: their slots (N, FIELDS), normals, view rays, lit flags."""
        base = self.palette[obj[:, COLOUR].long().clamp(0, 7)]
        metal = obj[:, MATERIAL] > 0.5
        lit = lit.float()
        diffuse = (normal @ self.light).clamp(min=0) * lit
        nh = (normal * F.normalize(self.light - dirs, dim=-1)).sum(-1).clamp(min=0)
        # rubber: matte, a faint broad sheen
        rubber = base * (self.ambient + 0.72 * diffuse)[:, None] + (0.06 * nh ** 12 * lit)[:, None]
        # metal: mirrors a ground-to-sky gradient, tinted by its colour, and a sharp white highlight
        refl = dirs - 2 * (dirs * normal).sum(-1, keepdim=True) * normal
        env = (0.5 + 0.5 * refl[:, 2]).clamp(0, 1)[:, None] ** 2
        mirror = torch.lerp(self.ground * 0.12, self.sky * 1.5, env)
        shiny = base * (0.1 + 0.25 * diffuse[:, None] + 1.2 * mirror) + (1.0 * nh ** 60 * lit)[:, None]
        return torch.where(metal[:, None], shiny, rubber).clamp(0, 1)
