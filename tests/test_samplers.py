"""Samplers against targets with known answers; float64, fixed seeds, MCSE-based checks."""

import math

import pytest
import torch

from trex.diagnostics import mcse_mean, summarize
from trex.samplers import HMC, RWM, Hamiltorch, NUTSPyro, leapfrog, make_sampler
from trex.samplers.hmc import HMCParams, kinetic, mass_windows
from trex.surrogate import Guided

F64 = torch.float64


# tiny batched ops get slower, not faster, with intra-op threads on a shared machine
pytestmark = pytest.mark.usefixtures("one_thread")


class Gaussian:
    def __init__(self, mean, cov):
        self.mean = torch.as_tensor(mean, dtype=F64)
        self.cov = torch.as_tensor(cov, dtype=F64)
        self.prec = torch.linalg.inv(self.cov)
        self.dim = len(self.mean)

    def logdensity(self, z):
        d = z - self.mean
        return -0.5 * ((d @ self.prec) * d).sum(-1)

    def logdensity_and_grad(self, z):
        d = z - self.mean
        return -0.5 * ((d @ self.prec) * d).sum(-1), -(d @ self.prec)


class LinearGaussianPosterior:
    """Prior N(0, I), y = A z + N(0, s^2 I): the posterior is Gaussian in closed form."""

    def __init__(self, seed=1, dim=3, obs=4, noise=0.5):
        g = torch.Generator().manual_seed(seed)
        self.A = torch.randn(obs, dim, generator=g, dtype=F64)
        self.y = torch.randn(obs, generator=g, dtype=F64)
        self.s2, self.dim = noise**2, dim
        self.cov = torch.linalg.inv(torch.eye(dim, dtype=F64) + self.A.T @ self.A / self.s2)
        self.mean = self.cov @ self.A.T @ self.y / self.s2

    def logdensity(self, z):
        r = self.y - z @ self.A.T
        return -0.5 * (z * z).sum(-1) - 0.5 * (r * r).sum(-1) / self.s2

    def logdensity_and_grad(self, z):
        r = self.y - z @ self.A.T
        return self.logdensity(z), -z + r @ self.A / self.s2


class Quartic:
    """Non-Gaussian, log p = -sum(z^2/2 + z^4/4): exercises the integrator off the linear case."""

    dim = 3

    def logdensity(self, z):
        return -(0.5 * z**2 + 0.25 * z**4).sum(-1)

    def logdensity_and_grad(self, z):
        return self.logdensity(z), -(z + z**3)


class NaNAbove:
    """2-D standard normal that returns NaN (value and gradient) where z0 > cut."""

    dim = 2

    def __init__(self, cut=1.0):
        self.cut, self.calls = cut, 0

    def logdensity(self, z):
        ld = -0.5 * (z * z).sum(-1)
        return torch.where(z[:, 0] > self.cut, torch.full_like(ld, math.nan), ld)

    def logdensity_and_grad(self, z):
        self.calls += 1
        bad = (z[:, 0] > self.cut)[:, None]
        return self.logdensity(z), torch.where(bad, torch.full_like(z, math.nan), -z)


CORR = Gaussian([1.0, -2.0], [[1.0, 1.8], [1.8, 4.0]])
TARGETS = {
    "std5": Gaussian(torch.zeros(5), torch.eye(5)),
    "corr2": CORR,
    "posterior": LinearGaussianPosterior(),
}


def run_chains(kernel, target, chains=64, warmup=300, draws=500, seed=0, init=None):
    g = torch.Generator().manual_seed(seed)
    z0 = torch.randn(chains, target.dim, generator=g, dtype=F64) if init is None else init
    state = kernel.init(z0, target)
    params = kernel.init_params(chains, target.dim, torch.device("cpu"), F64)
    adapt = kernel.adaptation(warmup)
    warm_infos, infos, xs = [], [], []
    for _ in range(warmup):
        state, info = kernel.step(state, target, params, g)
        params = adapt.update(params, state, info)
        warm_infos.append(info)
    params = adapt.final(params)
    for _ in range(draws):
        state, info = kernel.step(state, target, params, g)
        xs.append(state.position)
        infos.append(info)
    return torch.stack(xs, 1), params, state, warm_infos, infos


def assert_moments(x, mean, var, k=4.0):
    """Mean and variance per coordinate within k Monte Carlo standard errors (ESS-based)."""
    mean, var = mean.numpy(), var.numpy()
    xn = x.numpy()
    err = xn.mean((0, 1)) - mean
    assert (abs(err) < k * mcse_mean(xn)).all(), (err, mcse_mean(xn))
    sq = (xn - mean) ** 2  # E[(x - mu)^2] = var, with its own ESS
    err2 = sq.mean((0, 1)) - var
    assert (abs(err2) < k * mcse_mean(sq)).all(), (err2, mcse_mean(sq))


@pytest.mark.parametrize("name", list(TARGETS))
@pytest.mark.parametrize("kernel", [HMC, RWM], ids=["hmc", "rwm"])
def test_kernel_recovers_moments(kernel, name):
    target = TARGETS[name]
    # RWM steps are cheap but mix slowly: more of them for a comparable ESS per chain
    length = dict(warmup=300, draws=500) if kernel is HMC else dict(warmup=500, draws=2000)
    x, *_ = run_chains(kernel(), target, **length)
    assert summarize(x)["rhat_max"] < 1.05
    assert_moments(x, target.mean, torch.diagonal(target.cov))


def test_leapfrog_is_reversible():
    target, g = Quartic(), torch.Generator().manual_seed(0)
    q0 = torch.randn(8, 3, generator=g, dtype=F64)
    p0 = torch.randn(8, 3, generator=g, dtype=F64)
    eps = torch.linspace(0.05, 0.2, 8, dtype=F64)
    inv_mass = torch.tensor([1.0, 0.5, 2.0], dtype=F64)
    _, g0 = target.logdensity_and_grad(q0)
    q1, p1, _, g1 = leapfrog(q0, p0, g0, eps, 25, target, inv_mass)
    q2, p2, _, _ = leapfrog(q1, -p1, g1, eps, 25, target, inv_mass)
    assert torch.allclose(q2, q0, atol=1e-10, rtol=0)
    assert torch.allclose(-p2, p0, atol=1e-10, rtol=0)


def test_leapfrog_energy_error_is_second_order():
    target, g = Quartic(), torch.Generator().manual_seed(0)
    q0 = torch.randn(16, 3, generator=g, dtype=F64)
    p0 = torch.randn(16, 3, generator=g, dtype=F64)
    ones = torch.ones(3, dtype=F64)

    def max_energy_error(eps, steps):
        ld, grad = target.logdensity_and_grad(q0)
        h0 = kinetic(p0, ones) - ld
        q, p, worst = q0, p0, torch.zeros(16, dtype=F64)
        for _ in range(steps):  # one step at a time to see the whole trajectory
            q, p, ld, grad = leapfrog(q, p, grad, torch.full((16,), eps, dtype=F64), 1, target)
            worst = torch.maximum(worst, (kinetic(p, ones) - ld - h0).abs())
        return float(worst.max())

    ratio = max_energy_error(0.1, 20) / max_energy_error(0.05, 40)
    assert 3.0 < ratio < 5.0, ratio


def test_leapfrog_masking_matches_separate_runs():
    target, g = Quartic(), torch.Generator().manual_seed(0)
    q0 = torch.randn(3, 3, generator=g, dtype=F64)
    p0 = torch.randn(3, 3, generator=g, dtype=F64)
    eps = torch.tensor([0.1, 0.2, 0.15], dtype=F64)
    steps = torch.tensor([2, 7, 0])
    _, g0 = target.logdensity_and_grad(q0)
    q, p, ld, grad = leapfrog(q0, p0, g0, eps, 7, target, None, steps)
    for b in range(2):
        qb, pb, ldb, gb = leapfrog(q0[b:b + 1], p0[b:b + 1], g0[b:b + 1], eps[b:b + 1],
                                   int(steps[b]), target)
        assert torch.allclose(q[b], qb[0]) and torch.allclose(p[b], pb[0])
        assert torch.allclose(ld[b], ldb[0]) and torch.allclose(grad[b], gb[0])
    # a chain with zero steps stays put, with its own log density
    assert torch.equal(q[2], q0[2]) and torch.equal(p[2], p0[2])
    assert torch.allclose(ld[2], target.logdensity(q0[2:3])[0])


def test_hmc_one_batched_gradient_call_per_leapfrog_step():
    target = NaNAbove(cut=math.inf)
    kernel = HMC(step_size=0.1, trajectory_length=1.0)
    g = torch.Generator().manual_seed(0)
    state = kernel.init(torch.randn(16, 2, generator=g, dtype=F64), target)
    params = kernel.init_params(16, 2, None, F64)
    for _ in range(5):
        before = target.calls
        state, info = kernel.step(state, target, params, g)
        assert target.calls - before == info.num_grad_evals == int(info.num_steps.max())
        assert 1 <= info.num_grad_evals <= 10


def test_hmc_survives_nan_region():
    # also the case for the pooled step size: per chain, chains that sit by the region
    # shrink their step and every step then costs ~60 batched gradients instead of ~2
    target = NaNAbove(cut=1.0)
    g = torch.Generator().manual_seed(3)
    init = torch.randn(64, 2, generator=g, dtype=F64)
    init[:, 0] = -init[:, 0].abs()
    x, params, state, warm, infos = run_chains(HMC(), target, init=init, warmup=300, draws=500)
    divergent = sum(int(i.divergent.sum()) for i in warm + infos)
    assert divergent > 0
    for t in (state.position, state.logdensity, state.grad, x, params.step_size):
        assert torch.isfinite(t).all()
    assert (x[..., 0] <= 1.0).all()
    assert torch.stack([i.accept_prob.mean() for i in infos]).mean() > 0.5
    # rejecting trajectories through the bad region samples the truncated normal
    alpha = torch.tensor(1.0, dtype=F64)
    trunc_mean = -torch.exp(-alpha**2 / 2) / math.sqrt(2 * math.pi) / torch.special.ndtr(alpha)
    err = float(x[..., 0].mean() - trunc_mean)
    assert abs(err) < 4 * mcse_mean(x[..., :1].numpy())[0]


def test_dual_averaging_hits_target_acceptance():
    target = TARGETS["std5"]
    # per chain: the iterates' acceptance averages to the target during warm-up
    kernel = HMC(adapt_mass=False, adapt_length=False, target_accept=0.8, pool_step_size=False)
    _, params, _, warm, _ = run_chains(kernel, target, warmup=400, draws=1)
    assert params.step_size.unique().numel() == 64
    late = torch.stack([i.accept_prob.mean() for i in warm[200:]]).mean()
    assert abs(float(late) - 0.8) < 0.03
    # pooled over chains: the averaged step size itself gives the target acceptance
    kernel = HMC(adapt_mass=False, adapt_length=False, target_accept=0.8, pool_step_size=True)
    _, params, _, _, infos = run_chains(kernel, target, warmup=300, draws=200)
    assert torch.equal(params.step_size, params.step_size[:1].expand(64))
    acc = torch.stack([i.accept_prob.mean() for i in infos]).mean()
    assert abs(float(acc) - 0.8) < 0.03


def test_hmc_adapts_mass_and_length():
    x, params, *_ = run_chains(HMC(), CORR)
    # the diagonal inverse mass estimates the marginal variances (1, 4)
    assert torch.allclose(params.inv_mass, torch.tensor([1.0, 4.0], dtype=F64), rtol=0.25)
    assert params.trajectory_length != 1.0
    assert mass_windows(1000) == [(75, 100), (100, 150), (150, 250), (250, 450), (450, 950)]
    assert mass_windows(10) == []


def test_rwm_scale_adaptation_and_custom_proposal():
    target = TARGETS["std5"]
    _, params, _, _, infos = run_chains(RWM(), target, warmup=400, draws=200)
    acc = torch.stack([i.accept_prob.mean() for i in infos]).mean()
    assert abs(float(acc) - 0.234) < 0.05
    assert all(i.num_grad_evals == 0 and i.num_evals == 1 for i in infos)

    class WithPropose(Gaussian):
        used = 0

        def propose(self, z, scale, generator):
            self.used += 1
            noise = torch.randn(z.shape, generator=generator, dtype=z.dtype)
            return z + scale[:, None] * noise, torch.zeros(z.shape[0], dtype=z.dtype)

    custom = WithPropose(torch.zeros(2), torch.eye(2))
    x, *_ = run_chains(RWM(), custom, warmup=200, draws=400)
    assert custom.used == 600
    assert_moments(x, custom.mean, torch.ones(2, dtype=F64))


def test_nuts_pyro_on_correlated_gaussian():
    init = torch.zeros(2, 2, dtype=F64)
    res = NUTSPyro().run(CORR, init, num_warmup=150, num_samples=300, seed=0, progress=False)
    assert res.positions.shape == (2, 300, 2) and res.positions.dtype == F64
    assert res.logdensity.shape == (2, 300) and res.divergent.shape == (2, 300)
    assert res.divergent.dtype == torch.bool and res.step_size.shape == (2,)
    assert res.accept_prob is not None and res.accept_prob.shape == (2, 300)
    assert ((res.accept_prob >= 0) & (res.accept_prob <= 1)).all()
    assert res.num_grad_evals > 2 * 450 and res.wall_time > 0
    assert torch.allclose(res.logdensity, CORR.logdensity(res.positions))
    err = res.positions.mean((0, 1)) - CORR.mean
    assert (err.abs().numpy() < 4 * mcse_mean(res.positions.numpy())).all()


def test_make_sampler_registry():
    assert isinstance(make_sampler("hmc", step_size=0.2), HMC)
    assert isinstance(make_sampler("rwm"), RWM)
    assert isinstance(make_sampler("nuts"), NUTSPyro)
    with pytest.raises(ValueError, match="hamiltorch.*hmc.*nuts.*rwm"):
        make_sampler("mala")


try:
    import hamiltorch  # noqa: F401
    HAVE_HAMILTORCH = True
except ImportError:
    HAVE_HAMILTORCH = False


@pytest.mark.skipif(HAVE_HAMILTORCH, reason="hamiltorch is installed: no error path to test")
def test_hamiltorch_missing_gives_clear_error():
    with pytest.raises(ImportError, match="pip install git\\+https://github.com/AdamCobb/hamiltorch"):
        make_sampler("hamiltorch")
    with pytest.raises(ImportError, match="sampler=hmc"):
        Hamiltorch()


@pytest.mark.skipif(not HAVE_HAMILTORCH,
                    reason="hamiltorch is not on PyPI and not installed here "
                           "(pip install git+https://github.com/AdamCobb/hamiltorch)")
def test_hamiltorch_runs():
    init = torch.zeros(2, 2, dtype=F64)
    res = Hamiltorch(step_size=0.3, num_steps_per_sample=5).run(
        CORR, init, num_warmup=100, num_samples=200, seed=0, progress=False)
    assert res.positions.shape == (2, 200, 2) and res.num_grad_evals > 0
    assert torch.isfinite(res.logdensity).all()


class RoughUnderAutocast(LinearGaussianPosterior):
    """Exact in full precision; under autocast both the gradient and the log density are wrong
    (as a low-precision pass would make them, only more so). HMC(grad_dtype=...) may follow the
    rough gradient but must accept with the exact log density: a 1.5x too steep density would
    shrink the variances by a third."""

    def logdensity_and_grad(self, z):
        ld, grad = super().logdensity_and_grad(z)
        if torch.is_autocast_enabled("cpu"):
            return 1.5 * ld, 1.2 * grad + 0.3 * torch.sin(3 * z)
        return ld, grad


def test_hmc_low_precision_gradients_keep_the_exact_posterior():
    target = RoughUnderAutocast()
    kernel = HMC(grad_dtype="bfloat16")
    x, params, state, _, infos = run_chains(kernel, target)
    assert_moments(x, target.mean, torch.diagonal(target.cov))
    # the state's log density is the exact one, and each step paid one extra exact evaluation
    assert torch.allclose(state.logdensity, target.logdensity(state.position))
    assert infos[-1].num_evals == infos[-1].num_grad_evals + 1
    assert 0.3 < torch.stack([i.accept_prob for i in infos]).mean() < 0.95


def test_hmc_following_a_wrong_guide_keeps_the_exact_posterior():
    """Trajectories follow a guide with the wrong mean and scale (what a poor surrogate does); the
    accept step uses the exact density, so the moments are still the target's. The classifier-side
    target is never asked for a gradient, only for one forward pass per step."""
    exact = TARGETS["corr2"]
    kernel = HMC()
    target = Guided(exact, Gaussian(exact.mean + 0.3, 1.5 * exact.cov))  # the kernel follows the target's guide
    x, params, state, _, infos = run_chains(kernel, target)
    target = exact
    assert_moments(x, target.mean, torch.diagonal(target.cov))
    assert torch.allclose(state.logdensity, target.logdensity(state.position))
    last = infos[-1]
    assert last.num_grad_evals == 0 and last.num_evals == 1 and last.guide_evals == int(last.num_steps.max())
    # step size is tuned on the guide's own energy error, which the misfit does not enter
    tune = torch.stack([i.tune_prob for i in infos]).mean()
    accept = torch.stack([i.accept_prob for i in infos]).mean()
    assert tune > accept > 0.2


def _chees_reference(log_t, log_avg, v, t, start, info, max_steps, lr=0.025, beta2=0.95, max_update=0.35,
                     decay=0.5):
    """The ChEES update in plain Python floats (Hoffman et al. 2021, Adam with beta1 = 0 on log T)."""
    ok = ~info.divergent
    w = torch.where(ok, info.accept_prob, torch.zeros_like(info.accept_prob)).double()
    if int(ok.sum()) < 2 or float(w.sum()) <= 0:
        return log_t, log_avg, v, t
    prop = torch.where(ok[:, None], info.proposal, torch.zeros_like(info.proposal)).double()
    q1 = prop - (w[:, None] * prop).sum(0) / w.sum()
    q0 = (start - start.mean(0)).double()
    g = info.integration_time.double() * ((q1 * q1).sum(-1) - (q0 * q0).sum(-1)) * (q1 * info.velocity).sum(-1)
    grad = float((w * torch.where(ok, g, torch.zeros_like(g))).sum() / w.sum())
    t += 1
    v = beta2 * v + (1 - beta2) * grad**2
    step = lr * grad / (math.sqrt(v / (1 - beta2**t)) + 1e-12)
    log_t += max(-max_update, min(max_update, step))
    eps = info.step_size
    log_t = min(max(log_t, math.log(float(eps.min()))), math.log(max_steps * float(eps.max())))
    wt = t ** (-decay)
    return log_t, (1 - wt) * log_avg + wt * log_t, v, t


def test_chees_tensor_state_follows_the_update_rule_and_skips_unusable_steps():
    """ChEES keeps its state in tensors (no host sync per warm-up step on an accelerator); it must take
    the same steps as the rule written with floats, including the skipped ones (fewer than two usable
    chains, or no acceptance at all) and the clamp to [min eps, max_steps * max eps]."""
    from trex.samplers.hmc import ChEES, HMCInfo
    gen = torch.Generator().manual_seed(0)
    B, D = 16, 3
    chees = ChEES(0.7)
    ref = (math.log(0.7), math.log(0.7), 0.0, 0)
    for k in range(40):
        start = torch.randn(B, D, generator=gen)
        div = torch.rand(B, generator=gen) < 0.2
        if k == 5:
            div = torch.ones(B, dtype=torch.bool)
            div[0] = False  # one usable chain: no update
        acc = torch.rand(B, generator=gen) * (0 if k == 9 else 1)  # k = 9: nothing accepted, no update
        eps = torch.full((B,), 0.05) * (1 + torch.rand(B, generator=gen))
        info = HMCInfo(acc, acc > 0.5, div, 1, 1, eps, torch.ones(B, dtype=torch.long), torch.zeros(B),
                       start + 0.5 * torch.randn(B, D, generator=gen), torch.randn(B, D, generator=gen),
                       eps * (1 + 10 * torch.rand(B, generator=gen)), 0, acc, torch.tensor(0), 8)
        out = chees.update(start, info, info.max_steps)
        ref = _chees_reference(*ref, start, info, info.max_steps)
        assert isinstance(out, torch.Tensor)
        assert math.isclose(float(chees.log_t), ref[0], rel_tol=1e-9, abs_tol=1e-12), k
        assert math.isclose(float(out), math.exp(ref[0]), rel_tol=1e-6), k  # returned in the chains' dtype
        assert int(chees.t) == ref[3], k
    assert math.isclose(float(chees.final()), math.exp(ref[1]), rel_tol=1e-6)
    assert int(chees.t) == 38  # two of the 40 steps were skipped
