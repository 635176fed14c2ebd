"""A cheap stand-in for f(g(z)) that HMC trajectories can follow (surrogate-gradient HMC).

The posterior's cost is the classifier on the decoded image, and a trajectory needs its gradient
at every leapfrog step. But z has only a few dimensions, so a small network of z can learn the class
probabilities f(g(z)) from points the warm-up visits anyway. Trajectories then follow the network's
gradient, and each one ends with a single exact evaluation of the real posterior for the accept
step. Leapfrog with any fixed force field is reversible and volume-preserving, so the accept step
keeps the exact posterior: a poor surrogate only lowers acceptance, it cannot bias the draws
(Neal 2011, sec. 5.5; Zhang, Shahbaba & Zhao 2017 use the same idea with random-basis networks).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from trex.samplers.base import rows_of, value_and_grad


class LogitSurrogate(nn.Module):
    """z (B, D) -> class log-probabilities (B, K): an MLP with smooth (SiLU) units, because HMC follows
    its gradient and a ReLU net's gradient is piecewise constant. Inputs are standardised with the
    training points' mean and scale."""

    def __init__(self, dim: int, num_classes: int, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.sizes = {"dim": dim, "num_classes": num_classes, "hidden": hidden, "depth": depth}  # to rebuild it
        layers, width = [], dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, num_classes))
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net((z - self.shift) / self.scale).log_softmax(-1)


def fit_surrogate(z: torch.Tensor, probs: torch.Tensor, hidden: int = 128, depth: int = 3, steps: int = 3000,
                  batch: int = 2048, lr: float = 1e-2, seed: int = 0, population=None,
                  max_epochs: int = 100) -> tuple[LogitSurrogate, dict]:
    """Fit a LogitSurrogate to (z, probs) pairs by cross-entropy against the soft labels (KL to the
    classifier's probabilities), with a cosine-decayed Adam. Returns the net (eval mode, frozen) and a
    report: the fit's mean KL and largest probability error on a held-out tenth of the points, and,
    given the population of targets it serves, that error near each target's level set. A small
    point set (the first fit, on prior draws) stops after `max_epochs` passes over it."""
    z, probs = z.detach().float(), probs.detach().float()
    if len(z) < 20:
        raise ValueError(f"need at least 20 points to fit a surrogate, got {len(z)}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(z), generator=g)
    n_val = max(len(z) // 10, 1)
    val, train = perm[:n_val], perm[n_val:]
    with torch.random.fork_rng(devices=[]):  # a seeded init that leaves the caller's RNG alone
        torch.manual_seed(seed)
        net = LogitSurrogate(z.shape[1], probs.shape[1], hidden, depth).to(z.device)
    net.shift.copy_(z[train].mean(0))
    net.scale.copy_(z[train].std(0).clamp_min(1e-6))
    steps = max(1, min(steps, -(-max_epochs * len(train) // batch)))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    with torch.enable_grad():
        for _ in range(steps):
            idx = train[torch.randint(len(train), (min(batch, len(train)),), generator=g)]
            loss = -(probs[idx] * net(z[idx])).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        logq = net(z[val])
        p = probs[val]
        kl = (p * (p.clamp_min(1e-12).log() - logq)).sum(-1)
        err = (logq.exp() - p).abs().max(-1).values
    report = {"points": len(z), "steps": steps, "val_kl_mean": float(kl.mean()), "val_prob_err_mean": float(err.mean()),
              "val_prob_err_p95": float(err.quantile(0.95))}
    if population is not None:
        report["regions"] = region_errors(net, z[val], p, population)
    return net, report


class SurrogatePosterior:
    """The posterior with the classifier-on-decoder replaced by `net`: the same prior, target,
    σ and σ factor (read from `posterior` on every call, so annealing carries over)."""

    def __init__(self, posterior, net: LogitSurrogate):
        self.posterior, self.net = posterior, net

    @property
    def dim(self) -> int:
        return self.posterior.dim

    def logdensity(self, z: torch.Tensor) -> torch.Tensor:
        post = self.posterior
        return post.distribution.log_prior(z) + post.log_likelihood(self.net(z).exp())

    def logdensity_and_grad(self, z: torch.Tensor):
        return value_and_grad(self.logdensity, z)

    def subset(self, idx) -> "SurrogatePosterior":
        sub = getattr(self.posterior, "subset", None)
        return self if sub is None else SurrogatePosterior(sub(idx), self.net)


class PartlyExact:
    """The field trajectories follow once some targets fell back to exact gradients: the surrogate's
    for every chain, the exact posterior's for the chains in `mask` ((B,) bool, one row per chain).
    Their trajectories then cost classifier gradients again, and their acceptance no longer pays for
    the surrogate's misfit."""

    def __init__(self, guide: SurrogatePosterior, exact, mask: torch.Tensor):
        self.guide, self.exact, self.mask = guide, exact, mask

    @property
    def dim(self) -> int:
        return self.guide.dim

    def _exact_rows(self):
        idx = self.mask.nonzero().squeeze(1)  # a host sync, paid only by runs where a target fell back
        return idx if len(idx) else None

    def logdensity(self, z):
        out = self.guide.logdensity(z)
        if (idx := self._exact_rows()) is not None:
            out = out.index_put((idx,), rows_of(self.exact, idx).logdensity(z[idx]))
        return out

    def logdensity_and_grad(self, z):
        lp, grad = self.guide.logdensity_and_grad(z)
        if (idx := self._exact_rows()) is not None:
            lp_e, grad_e = rows_of(self.exact, idx).logdensity_and_grad(z[idx])
            lp, grad = lp.index_put((idx,), lp_e), grad.index_put((idx,), grad_e)
        return lp, grad

    def subset(self, idx) -> "PartlyExact":
        return PartlyExact(self.guide.subset(idx), rows_of(self.exact, idx), self.mask[idx])


class Guided:
    """The target an HMC kernel gets once a surrogate exists: log densities (the accept step) are the
    exact posterior's, and `guide` is the field trajectories follow. The kernel itself keeps no run
    state, so the same kernel object can serve the next run. The guide is a SurrogatePosterior, or a
    PartlyExact one where some targets fell back to exact gradients."""

    def __init__(self, exact, guide):
        self.exact, self.guide = exact, guide

    @property
    def dim(self) -> int:
        return self.exact.dim

    def logdensity(self, z):
        return self.exact.logdensity(z)

    def logdensity_and_grad(self, z):
        return self.exact.logdensity_and_grad(z)

    def subset(self, idx) -> "Guided":
        sub = getattr(self.exact, "subset", None)
        return self if sub is None else Guided(sub(idx), self.guide.subset(idx))


def cache_path(folder, models_hash: str, sizes: dict, steps: int) -> Path:
    """Where the surrogate of one (generator, classifier) pair is kept: named by both models' weights
    and the fit's settings, so other models or settings never read it."""
    key = f"{models_hash}-h{sizes['hidden']}d{sizes['depth']}-s{steps}"
    return Path(folder) / f"surrogate-{key}.pt"


def save_cached(path, net: LogitSurrogate, report: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": net.state_dict(), "sizes": net.sizes, "report": report}, tmp)
    tmp.replace(path)


def load_cached(path, device=None):
    """(net, report) from a cache file written by save_cached, or None if there is none."""
    if not Path(path).exists():
        return None
    from trex.safeload import read
    ck = read(path, "cached surrogate", map_location="cpu")
    net = LogitSurrogate(**ck["sizes"])
    net.load_state_dict(ck["state_dict"])
    return net.to(device).eval().requires_grad_(False), dict(ck["report"], cached=str(path))


def region_errors(net: LogitSurrogate, z: torch.Tensor, probs: torch.Tensor, population, tol: float = 0.1):
    """The fit's probability error near each target's level set: over the held-out points whose exact
    confidences lie within `tol` of target k, the mean and 95th percentile of the largest gap between
    the surrogate's and the classifier's probabilities (None where no held-out point is that near)."""
    out = []
    with torch.no_grad():
        err = (net(z).exp() - probs).abs().max(-1).values
        for m in population.members:
            near = m.distance(probs) <= tol
            e = err[near]
            out.append({"target": str(m.target), "points": int(near.sum()),
                        "prob_err_mean": float(e.mean()) if len(e) else None,
                        "prob_err_p95": float(e.quantile(0.95)) if len(e) else None})
    return out


class PointTap:
    """Collects (z, probs) pairs from a posterior's evaluations, keeping at most `capacity` of them
    (a uniform random subset once full, by reservoir sampling over batches)."""

    def __init__(self, capacity: int = 200_000, seed: int = 0):
        self.capacity, self.seen = capacity, 0
        self.z, self.p = None, None
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, z: torch.Tensor, probs: torch.Tensor):
        z, probs = z.detach().float().cpu(), probs.detach().float().cpu()
        ok = torch.isfinite(z).all(-1) & torch.isfinite(probs).all(-1)
        z, probs = z[ok], probs[ok]
        if self.z is None:
            self.z, self.p = z[:0], probs[:0]
        n_add = min(max(self.capacity - len(self.z), 0), len(z))
        if n_add:
            self.z, self.p = torch.cat([self.z, z[:n_add]]), torch.cat([self.p, probs[:n_add]])
            z, probs = z[n_add:], probs[n_add:]
            self.seen += n_add
        if len(z):  # reservoir: the i-th point seen replaces a random slot with probability capacity / i
            i = self.seen + torch.arange(1, len(z) + 1)
            slot = (torch.rand(len(z), generator=self.gen) * i).long()
            keep = slot < self.capacity
            self.z[slot[keep]], self.p[slot[keep]] = z[keep], probs[keep]
            self.seen += len(z)

    def __len__(self):
        return 0 if self.z is None else len(self.z)

    def __getstate__(self):  # a resume checkpoint keeps the reservoir's random state too
        state = dict(self.__dict__)
        state["gen"] = self.gen.get_state()
        return state

    def __setstate__(self, state):
        gen = torch.Generator()
        gen.set_state(state.pop("gen"))
        self.__dict__.update(state, gen=gen)
