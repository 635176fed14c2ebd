"""Honest reports: per-chain trajectory jitter at the cost of the chains' own steps, NUTS acceptance as a
probability, warm-up divergences counted beside kept ones."""
import torch

import trex
from test_runner import make_post
from test_samplers import F64, Quartic
from trex.samplers import HMC, leapfrog
from trex.samplers.base import RunResult


class Counting(Quartic):
    """Records how many chains each gradient call sees."""

    def __init__(self):
        self.batches = []

    def logdensity_and_grad(self, z):
        self.batches.append(len(z))
        return super().logdensity_and_grad(z)


def test_finished_chains_leave_the_leapfrog_batch():
    target, g = Counting(), torch.Generator().manual_seed(0)
    q0, p0 = torch.randn(3, 3, generator=g, dtype=F64), torch.randn(3, 3, generator=g, dtype=F64)
    _, g0 = target.logdensity_and_grad(q0)
    target.batches.clear()
    leapfrog(q0, p0, g0, 0.1, 5, target, None, torch.tensor([1, 5, 3]))
    assert target.batches == [3, 2, 2, 1, 1]  # 1 + 5 + 3 chain-steps, not 3 × 5


def test_each_chain_draws_its_own_trajectory_jitter():
    target, g = Quartic(), torch.Generator().manual_seed(0)
    kernel = HMC(step_size=0.05, trajectory_length=1.0, max_steps=100)
    state = kernel.init(torch.randn(64, 3, generator=g, dtype=F64), target)
    _, info = kernel.step(state, target, kernel.init_params(64, 3, None, F64), g)
    assert len(torch.unique(info.num_steps)) > 10  # one shared u gave every chain the same length


class FixedAcceptance:
    """A whole-run backend whose every transition has acceptance probability 0.3."""

    name = "fixed"

    def run(self, posterior, z0, num_warmup, num_samples, seed, progress):
        c, d = z0.shape
        pos = z0[:, None].repeat(1, num_samples, 1) + 0.01 * torch.arange(num_samples)[None, :, None]
        return RunResult(pos, torch.zeros(c, num_samples), torch.full((c, num_samples), 0.3),
                         torch.zeros(c, num_samples, dtype=torch.bool), torch.full((c,), 0.1), 10, 0.1)


def test_whole_run_backend_reports_its_mean_acceptance_probability(tiny_models):
    """Before, each draw counted as accepted when its probability exceeded 0.5: 0.3 became 0 %."""
    res = trex.sample(make_post(tiny_models), FixedAcceptance(), num_chains=2, num_warmup=0, num_samples=6,
                      progress=False, store_images=False)
    assert abs(res.diagnostics["accept_prob_mean"] - 0.3) < 1e-6
    assert res.accepted.all()  # every draw moved
    assert res.diagnostics["warmup_divergences"] is None  # the backend does not report them


class EarlyDivergences(HMC):
    """HMC whose first 5 steps are all flagged divergent (as a bad warm-up start would be)."""

    def step(self, state, target, params, generator=None):
        self._n = getattr(self, "_n", 0) + 1
        new, info = super().step(state, target, params, generator)
        return new, info._replace(divergent=info.divergent | (self._n <= 5))


def test_warmup_divergences_are_counted_beside_kept_ones(tiny_models):
    res = trex.sample(make_post(tiny_models), EarlyDivergences(max_steps=8), num_chains=4, num_warmup=20,
                      num_samples=5, progress=False, store_images=False)
    assert res.diagnostics["warmup_divergences"] >= 5 * 4
    assert res.diagnostics["divergences"] == int(res.divergent.sum())


def test_resample_needs_a_shrinking_sigma_and_weighted_starts(tiny_models, capsys):
    """Before, resample=True with a constant σ silently did nothing, and with init=prior_best it
    weighted best-of starts as if they were prior draws."""
    import pytest
    post = make_post(tiny_models)
    kw = dict(num_chains=4, num_warmup=10, num_samples=3, progress=False, store_images=False, resample=True)
    with pytest.raises(trex.UserError, match="constant σ schedule never shrinks"):
        trex.sample(post, HMC(max_steps=4), sigma_schedule="constant", **kw)
    res = trex.sample(post, HMC(max_steps=4), init="prior_best", **kw)
    assert res.meta["init"] == "prior_resample" and "init switched" in capsys.readouterr().out


def test_masked_and_compacted_leapfrog_agree():
    """The accelerator path (finished chains masked) and the CPU path (compacted out) integrate alike."""
    target, g = Quartic(), torch.Generator().manual_seed(1)
    q0, p0 = torch.randn(5, 3, generator=g, dtype=F64), torch.randn(5, 3, generator=g, dtype=F64)
    _, g0 = target.logdensity_and_grad(q0)
    steps, eps = torch.tensor([1, 4, 0, 2, 4]), torch.tensor([0.1, 0.2, 0.1, 0.15, 0.05], dtype=F64)
    a = leapfrog(q0, p0, g0, eps, 4, target, None, steps, compact=True)
    b = leapfrog(q0, p0, g0, eps, 4, target, None, steps, compact=False)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_a_plan_is_checked_once_and_frozen():
    import dataclasses
    import pytest
    plan = trex.Plan.of({"num_chains": 8, "num_warmup": 10, "sampler": "ignored", "wandb": True})
    assert (plan.num_chains, plan.num_warmup, plan.total_steps) == (8, 10, 10 + 1000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.num_chains = 9
    for bad in (dict(num_chains=0), dict(num_samples="abc"), dict(init="prio"), dict(sigma_schedule="geo")):
        with pytest.raises(trex.UserError):
            trex.Plan(**bad)
    with pytest.raises(TypeError, match="not both"):
        trex.sample(None, None, plan, num_chains=3)
