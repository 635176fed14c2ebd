"""Many targets, one batch of chains.

f(g(z)) does not depend on the target: only the last step, the likelihood of the class
probabilities, does. So chains for T targets against the same generator and classifier can share
every decode and classifier pass. A `Population` is the posterior of such a batch: row b of the
batch serves target `rows[b]` (rows k*C .. (k+1)*C - 1 for target k at the start). The kernels see
one ordinary target of B = T*C chains; the runner keeps adaptation and diagnostics per target by
slicing (`take`, `merge_params`) and splits the draws back into one SampleSet per target.
"""
from __future__ import annotations

import copy
import math

import torch

from trex.errors import UserError
from trex.samplers.base import value_and_grad


def view(posterior, **changes):
    """A shallow copy of `posterior` with some attributes changed (e.g. sigma_factor): the models are
    shared, the caller's object is left as it is."""
    out = copy.copy(posterior)
    for k, v in changes.items():
        setattr(out, k, v)
    return out


class Population:
    """RelaxedPosteriors over the same distribution and classifier, as one target of len(members) ×
    chains rows. `sigma_factor` tempers every member's σ; `tap(z, probs)` sees every evaluation, and
    `memo(z, probs, batch_rows)` too, with the batch rows they belong to (trex.recorder.LastProbs)."""

    def __init__(self, members, chains: int, sigma_factor: float = 1.0, tap=None):
        members = list(members)
        if not members:
            raise UserError("sampling needs at least one target")
        first = members[0]
        for m in members[1:]:
            if m.distribution is not first.distribution or m.classifier is not first.classifier \
                    or m.output != first.output:
                raise UserError("the targets of one run must share one generator and one classifier (the same "
                                "objects, with the same output kind); sample other model pairs in their own run")
        self.members, self.chains = members, int(chains)
        self.distribution, self.classifier = first.distribution, first.classifier
        self.chunk_size = first.chunk_size
        self.tap, self.memo = tap, None
        self.sigma_factor = float(sigma_factor)
        device = self.distribution.device
        self.rows = torch.arange(len(members), device=device).repeat_interleave(self.chains)  # each row's target
        self.batch_rows = torch.arange(len(self.rows), device=device)  # each row's place in the whole batch
        self._ideal = torch.stack([m.target.ideal() for m in members]).to(device)
        self._temper()

    def _temper(self):
        self.tempered_members = [view(m, sigma_factor=m.sigma_factor * self.sigma_factor) for m in self.members]
        self._families = _families(self.tempered_members, self.distribution.device)

    @property
    def dim(self) -> int:
        return self.distribution.dim

    @property
    def size(self) -> int:
        return len(self.members)

    def slices(self) -> list[slice]:
        """Where each target's chains sit in the full batch."""
        return [slice(k * self.chains, (k + 1) * self.chains) for k in range(self.size)]

    # views: the population is never changed in place
    def tempered(self, factor: float) -> "Population":
        out = copy.copy(self)
        out.sigma_factor = float(factor)
        out._temper()
        return out

    def tapped(self, tap) -> "Population":
        out = copy.copy(self)
        out.tap = tap
        return out

    def remembered(self, memo) -> "Population":
        out = copy.copy(self)
        out.memo = memo
        return out

    def subset(self, idx) -> "Population":
        """The same population restricted to the rows `idx` (a kernel evaluating some chains only)."""
        out = copy.copy(self)
        out.rows, out.batch_rows = self.rows[idx], self.batch_rows[idx]
        return out

    def probs(self, z: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        return self.members[0].probs(z, images=images)

    def log_likelihood(self, probs: torch.Tensor) -> torch.Tensor:
        if self.size == 1:
            return self.tempered_members[0].log_likelihood(probs)
        out = None
        for fam in self._families:  # one batched computation per target family, not per target
            idx = None if len(self._families) == 1 else (fam.family_of[self.rows] == fam.id).nonzero().squeeze(1)
            v = fam.log_likelihood(probs if idx is None else probs[idx], fam.local[self.rows if idx is None else
                                                                                 self.rows[idx]])
            if idx is None:
                return v
            out = (v.new_empty(len(probs)) if out is None else out).index_put((idx,), v)  # autograd sees every part
        return out

    def distance(self, probs: torch.Tensor) -> torch.Tensor:
        """Each row's largest gap to its own target's ideal confidence vector."""
        if self.size == 1:
            return self.tempered_members[0].distance(probs)
        return (probs - self._ideal.to(probs)[self.rows]).abs().amax(-1)

    def _parts(self, z):
        n = self.chunk_size
        if n and z.shape[0] > n:
            return [(slice(i, i + n), self.subset(slice(i, i + n))) for i in range(0, z.shape[0], n)]
        return None

    def logdensity(self, z: torch.Tensor) -> torch.Tensor:
        if (parts := self._parts(z)) is not None:
            return torch.cat([p.logdensity(z[s]) for s, p in parts])
        probs = self.probs(z)
        if self.tap is not None:
            self.tap(z, probs)
        if self.memo is not None:
            self.memo(z, probs, self.batch_rows)
        return self.distribution.log_prior(z) + self.log_likelihood(probs)

    def logdensity_and_grad(self, z: torch.Tensor):
        if (parts := self._parts(z)) is not None:
            lp, grad = zip(*(p.logdensity_and_grad(z[s]) for s, p in parts))
            return torch.cat(lp), torch.cat(grad)
        return value_and_grad(self.logdensity, z)

    def propose(self, z, scale, generator=None):
        return self.distribution.propose(z, scale, generator)


def take(record, sl, batch: int):
    """The rows `sl` of a named tuple of per-chain tensors (State, Info): fields whose first dimension
    is the batch are sliced, the rest (counts, shared values) kept."""
    if record is None:
        return None
    return type(record)(*(x[sl] if isinstance(x, torch.Tensor) and x.dim() and x.shape[0] == batch else x
                          for x in record))


def put(record, sl, part):
    """`record` with rows `sl` replaced by `part` (a named tuple of the same kind)."""
    out = []
    for x, y in zip(record, part):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            x = x.clone()
            x[sl] = y
        out.append(x)
    return type(record)(*out)


def merge_params(parts: list, chains: int):
    """One kernel parameter record for the whole batch from one per target. Fields a params class
    names in `per_chain` are concatenated; shared tensors (a (D,) mass) and numbers (a trajectory
    length) become one row per chain. One target: its record as it is."""
    if len(parts) == 1:
        return parts[0]
    per_chain = getattr(type(parts[0]), "per_chain", ())
    fields = []
    for name, values in zip(parts[0]._fields, zip(*parts)):
        if name in per_chain:
            fields.append(torch.cat(values))
        elif isinstance(values[0], torch.Tensor):
            fields.append(torch.stack(values).repeat_interleave(chains, 0))
        else:
            ref = next((v for v in parts[0] if isinstance(v, torch.Tensor)), None)
            t = torch.tensor(values, device=None if ref is None else ref.device,
                             dtype=None if ref is None else ref.dtype)
            fields.append(t.repeat_interleave(chains))
    return type(parts[0])(*fields)


class _Family:
    """Targets of one kind (e.g. every `ambiguous:i,j`) with their σ's: one batched likelihood."""

    def __init__(self, fid: int, ks: list[int], members, num_targets: int, device):
        self.id = fid
        targets = [members[k].target for k in ks]
        self.stack = type(targets[0]).stacked(targets)
        probe = torch.full((1, targets[0].num_classes), 1.0 / targets[0].num_classes, device=device)
        m = targets[0].statistic(probe).shape[-1]
        self.sigmas = torch.stack([members[k].sigmas(m, probe) for k in ks])  # (n, m), tempered
        self.family_of = torch.full((num_targets,), -1, dtype=torch.long, device=device)
        self.local = torch.zeros(num_targets, dtype=torch.long, device=device)
        for j, k in enumerate(ks):
            self.family_of[k], self.local[k] = fid, j

    def log_likelihood(self, probs, which):
        u = self.stack.statistic(probs, which)
        s = self.sigmas.to(probs)[which]
        z = (u - self.stack.observed(probs, which)) / s
        return (-0.5 * z * z - s.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def _families(members, device) -> list[_Family]:
    kinds = {}
    for k, m in enumerate(members):
        kinds.setdefault((type(m.target), m.target.statistic(
            torch.full((1, m.target.num_classes), 1.0 / m.target.num_classes)).shape[-1]), []).append(k)
    return [_Family(f, ks, members, len(members), device) for f, ks in enumerate(kinds.values())]
