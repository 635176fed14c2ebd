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

import torch

from trex.errors import UserError


def view(posterior, **changes):
    """A shallow copy of `posterior` with some attributes changed (e.g. sigma_factor): the models are
    shared, the caller's object is left as it is."""
    out = copy.copy(posterior)
    for k, v in changes.items():
        setattr(out, k, v)
    return out


class Population:
    """RelaxedPosteriors over the same distribution and classifier, as one target of len(members) ×
    chains rows. `sigma_factor` tempers every member's σ; `tap(z, probs)` sees every evaluation."""

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
        self.tap = tap
        self.sigma_factor = float(sigma_factor)
        device = self.distribution.device
        self.rows = torch.arange(len(members), device=device).repeat_interleave(self.chains)
        self._temper()
        self._index()

    def _temper(self):
        self.tempered_members = [view(m, sigma_factor=m.sigma_factor * self.sigma_factor) for m in self.members]

    def _index(self):
        # the rows each member owns in this batch
        if len(self.members) == 1:
            self._groups = [(0, None)]  # every row: no indexing at all
            return
        rows = self.rows.cpu()
        self._groups = [(int(k), (rows == k).nonzero().squeeze(1).to(self.rows.device))
                        for k in torch.unique(rows)]

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

    def subset(self, idx) -> "Population":
        """The same population restricted to the rows `idx` (a kernel evaluating some chains only)."""
        out = copy.copy(self)
        out.rows = self.rows[idx]
        out._index()
        return out

    def probs(self, z: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        return self.members[0].probs(z, images=images)

    def _per_target(self, fn, probs: torch.Tensor) -> torch.Tensor:
        if self._groups[0][1] is None:
            return fn(self.tempered_members[0], probs)
        out = None
        for k, idx in self._groups:
            v = fn(self.tempered_members[k], probs[idx])
            out = v.new_empty((len(probs),) + v.shape[1:]) if out is None else out
            out = out.index_put((idx,), v)  # out of place: autograd sees every part
        return out

    def log_likelihood(self, probs: torch.Tensor) -> torch.Tensor:
        return self._per_target(lambda m, p: m.log_likelihood(p), probs)

    def distance(self, probs: torch.Tensor) -> torch.Tensor:
        return self._per_target(lambda m, p: m.distance(p), probs)

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
        return self.distribution.log_prior(z) + self.log_likelihood(probs)

    def logdensity_and_grad(self, z: torch.Tensor):
        if (parts := self._parts(z)) is not None:
            lp, grad = zip(*(p.logdensity_and_grad(z[s]) for s, p in parts))
            return torch.cat(lp), torch.cat(grad)
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            lp = self.logdensity(z)
            (grad,) = torch.autograd.grad(lp.sum(), z)
        return lp.detach(), grad

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
