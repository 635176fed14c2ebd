"""Many targets in one run: each target's draws come from its own posterior (quadrature), adaptation
is per target, the result is one SampleSet per target in the single-target format, resume works."""
import numpy as np
import pytest
import torch

import trex
from trex.diagnostics import mcse_mean
from trex.population import Population, merge_params, take
from trex.samplers import HMC, RWM
from trex.samplers.hmc import HMCParams

pytestmark = pytest.mark.usefixtures("one_thread")


class _Identity(torch.nn.Module):
    latent_dim = 1

    def forward(self, z):
        return z


class _Smooth(torch.nn.Module):
    """Two classes, P(class 0 | x) = sigmoid(3 x)."""
    num_classes = 2

    def forward(self, x):
        p0 = torch.sigmoid(3 * x.reshape(-1))
        return torch.stack([p0, 1 - p0], -1)


# three level sets at different places, and one target with a wider σ (a wider posterior)
TARGETS = [("p:0=0.7,1=0.3", 0.05), ("p:0=0.2,1=0.8", 0.05), ("p:0=0.5,1=0.5", 0.2)]


def _posts():
    dist, clf = trex.LatentGaussian(_Identity(), 1), _Smooth()
    return [trex.RelaxedPosterior(dist, clf, t, sigma=s, output="probs") for t, s in TARGETS]


def _moments(post):
    z = torch.linspace(-6, 6, 200001)
    with torch.no_grad():
        w = torch.softmax(post.logdensity(z[:, None]).double(), 0)
    mean = float((w * z).sum())
    return mean, float((w * (z - mean) ** 2).sum())


def _check_moments(res, post):
    mean, var = _moments(post)
    x = res.latents[..., 0]
    assert abs(x.mean() - mean) < 4 * mcse_mean(x)[0], (str(post.target), x.mean(), mean)
    sq = (x - mean) ** 2
    assert abs(sq.mean() - var) < 4 * mcse_mean(sq)[0], (str(post.target), sq.mean(), var)


@pytest.mark.parametrize("kernel", [lambda: HMC(), lambda: HMC(surrogate=True, surrogate_fit_steps=300,
                                                                  surrogate_max_steps=32), lambda: RWM()],
                         ids=["hmc", "surrogate-hmc", "rwm"])
def test_each_target_of_a_population_gets_its_own_posterior(kernel):
    """Three targets sampled at once: each one's mean and variance match its own quadrature within
    4 Monte Carlo standard errors; a shared adaptation or mixed-up rows would pull them together."""
    posts = _posts()
    runs = trex.sample(posts, kernel(), num_chains=32, num_warmup=150, num_samples=300, seed=0,
                       store_images=False, progress=False)
    assert len(runs) == 3
    for res, post in zip(runs, posts):
        assert res.meta["target"] == str(post.target) and res.latents.shape == (32, 300, 1)
        _check_moments(res, post)
        assert res.meta["population"]["targets"] == 3


def test_step_sizes_are_tuned_per_target():
    """Without a mass matrix to absorb the scale, the wide (σ = 0.2, about 3x wider) posterior gets a
    clearly longer step than the two narrow ones; one pooled step size would give all three the same."""
    runs = trex.sample(_posts(), HMC(adapt_mass=False), num_chains=16, num_warmup=100, num_samples=10, seed=0,
                       store_images=False, progress=False)
    steps = [float(np.median(r.step_size)) for r in runs]
    assert steps[2] > 2 * max(steps[:2]), steps


def test_a_population_result_has_the_single_target_format():
    posts = _posts()
    kw = dict(num_chains=8, num_warmup=20, num_samples=10, seed=1, store_images=True, progress=False)
    single = trex.sample(posts[0], HMC(), **kw)
    many = trex.sample(posts, HMC(), **kw)
    for name in ("latents", "probs", "logdensity", "accepted", "divergent", "accept_prob", "images", "step_size"):
        assert getattr(many[0], name).shape == getattr(single, name).shape, name
    assert set(single.meta) <= set(many[0].meta)
    assert many[0].meta["signature"] == single.meta["signature"]  # so a finished target is found either way


def test_the_surrogate_is_fit_once_and_reused_from_the_cache(tmp_path):
    posts = _posts()
    kernel = HMC(surrogate=True, surrogate_fit_steps=200, surrogate_max_steps=32)
    kw = dict(num_chains=16, num_warmup=60, num_samples=60, seed=0, store_images=False, progress=False,
              surrogate_cache=str(tmp_path))
    first = trex.sample(posts, kernel, **kw)
    files = list(tmp_path.glob("surrogate-*.pt"))
    assert len(files) == 1
    report = first[0].meta["surrogate"]
    assert [r["target"] for r in report["regions"]] == [str(p.target) for p in posts]
    assert all(r["points"] > 0 and r["prob_err_mean"] < 0.05 for r in report["regions"])
    # fit on prior draws before the first step, again at 60 % of warm-up; never a classifier gradient
    assert [f["at_step"] for f in first[0].meta["surrogate_fits"]] == [0, 36]
    assert first[0].meta["grad_evals"] == 0
    again = trex.sample(posts, kernel, **kw)  # the same models: the cached fit, from the first step, no fit
    assert again[0].meta["surrogate"]["cached"] == str(files[0])
    assert "surrogate_fits" not in again[0].meta
    for res, post in zip(again, posts):
        assert res.diagnostics["accept_rate"] > 0.3


class _Interrupt(Exception):
    pass


class _DyingHMC(HMC):
    def __init__(self, die_at, **kw):
        super().__init__(**kw)
        self._die_at, self._n = die_at, 0

    def step(self, *a, **kw):
        self._n += 1
        if self._n > self._die_at:
            raise _Interrupt
        return super().step(*a, **kw)


def test_an_interrupted_population_resumes_like_an_uninterrupted_one(tmp_path):
    posts = _posts()
    kw = dict(num_chains=4, num_warmup=30, num_samples=20, seed=2, store_images=False, progress=False,
              checkpoint_every=8)
    full = trex.sample(posts, HMC(max_steps=8), **kw)
    ck = tmp_path / "resume.pt"
    with pytest.raises(_Interrupt):
        trex.sample(posts, _DyingHMC(21, max_steps=8), checkpoint=ck, **kw)
    resumed = trex.sample(posts, HMC(max_steps=8), checkpoint=ck, **kw)
    for a, b in zip(full, resumed):
        np.testing.assert_allclose(a.latents, b.latents, rtol=1e-5, atol=1e-6)
    with pytest.raises(_Interrupt):
        trex.sample(posts, _DyingHMC(9, max_steps=8), checkpoint=ck, **kw)
    with pytest.raises(trex.UserError, match="target"):  # another target list is another run
        trex.sample(posts[:2], HMC(max_steps=8), checkpoint=ck, **kw)


def test_targets_of_one_run_must_share_the_models():
    a = trex.RelaxedPosterior(trex.LatentGaussian(_Identity(), 1), _Smooth(), "class:0", output="probs")
    b = trex.RelaxedPosterior(trex.LatentGaussian(_Identity(), 1), _Smooth(), "class:1", output="probs")
    with pytest.raises(trex.UserError, match="share one generator and one classifier"):
        trex.sample([a, b], HMC(), num_chains=2, num_warmup=2, num_samples=2, progress=False)


def test_rows_of_a_subset_keep_their_targets():
    """A kernel that evaluates some chains only (leapfrog drops finished ones) gets each row's own target."""
    pop = Population(_posts(), chains=2)
    z = torch.linspace(-1, 1, 6)[:, None]
    full = pop.logdensity(z)
    idx = torch.tensor([5, 0, 3])
    assert torch.allclose(pop.subset(idx).logdensity(z[idx]), full[idx])
    lp, grad = pop.subset(idx).logdensity_and_grad(z[idx])
    assert torch.allclose(grad, pop.logdensity_and_grad(z)[1][idx])


def test_params_of_several_targets_merge_per_chain():
    a = HMCParams(torch.full((2,), 0.1), torch.ones(3), 1.0)
    b = HMCParams(torch.full((2,), 0.3), torch.full((3,), 2.0), 2.0)
    m = merge_params([a, b], 2)
    assert m.step_size.tolist() == pytest.approx([0.1, 0.1, 0.3, 0.3])
    assert m.inv_mass.shape == (4, 3) and m.inv_mass[2:].eq(2.0).all()
    assert m.trajectory_length.tolist() == [1.0, 1.0, 2.0, 2.0]
    assert merge_params([a], 2) is a
    assert take(m, slice(2, 4), 4).step_size.tolist() == pytest.approx([0.3, 0.3])


def test_the_batched_likelihood_of_mixed_targets_equals_each_targets_own():
    """Targets of several families (two ambiguous pairs, a class, a simplex point, uniform, a
    three-class subset), with their own σ's: the population's one-computation-per-family likelihood,
    its gradient and its distance equal what each target's own posterior gives."""
    clf = torch.nn.Sequential(torch.nn.Linear(3, 10))
    dist = trex.LatentGaussian(torch.nn.Identity(), 3)
    specs = [("ambiguous:1,7", 0.05), ("class:4", 0.1), ("ambiguous:0,2", 0.05), ("p:8=0.6,9=0.4", 0.05),
             ("uniform", 0.2), ("ambiguous:1,4,7", 0.05), ("class:9", 0.05)]
    posts = [trex.RelaxedPosterior(dist, clf, t, sigma=s, num_classes=10) for t, s in specs]
    pop = Population(posts, chains=3).tempered(2.5)
    z = torch.randn(len(specs) * 3, 3, generator=torch.Generator().manual_seed(0))
    own = torch.cat([trex.population.view(p, sigma_factor=2.5).logdensity(z[3 * k:3 * k + 3])
                     for k, p in enumerate(posts)])
    assert torch.allclose(pop.logdensity(z), own, atol=1e-5)
    perm = torch.randperm(len(z), generator=torch.Generator().manual_seed(1))  # rows in any order
    assert torch.allclose(pop.subset(perm).logdensity(z[perm]), own[perm], atol=1e-5)
    grad = torch.cat([trex.population.view(p, sigma_factor=2.5).logdensity_and_grad(z[3 * k:3 * k + 3])[1]
                      for k, p in enumerate(posts)])
    assert torch.allclose(pop.logdensity_and_grad(z)[1], grad, atol=1e-4)
    with torch.no_grad():
        probs = pop.probs(z)
        dist_own = torch.cat([p.distance(probs[3 * k:3 * k + 3]) for k, p in enumerate(posts)])
    assert torch.allclose(pop.distance(probs), dist_own)


def test_warm_up_divergences_are_counted_per_target():
    """A target whose posterior is far narrower than the initial step size diverges in warm-up; the
    others do not: each SampleSet reports its own count, not the population's."""
    posts = _posts()
    runs = trex.sample(posts, HMC(step_size=5.0, max_energy_error=5.0), num_chains=8, num_warmup=30,
                       num_samples=5, seed=0, store_images=False, progress=False)
    counts = [r.meta["warmup_divergences"] for r in runs]
    assert all(isinstance(c, int) for c in counts)
    assert len(set(counts)) > 1, counts  # the same number three times would be the population's total


class _CountingSmooth(_Smooth):
    """_Smooth that counts the inputs it classifies."""

    def __init__(self):
        super().__init__()
        self.rows = 0

    def forward(self, x):
        self.rows += len(x)
        return super().forward(x)


@pytest.mark.parametrize("kernel,kw", [
    (lambda: HMC(), {}),
    (lambda: HMC(grad_dtype=torch.bfloat16), {}),
    (lambda: HMC(surrogate=True, surrogate_fit_steps=100, surrogate_max_steps=16), {}),
    (lambda: RWM(), dict(init="prior_resample", resample=True)),
], ids=["hmc", "hmc-bf16", "surrogate-hmc", "rwm-smc"])
def test_kept_probabilities_are_the_classifiers_at_the_kept_draws(kernel, kw):
    """The recorder takes each kept draw's probabilities from the run's own last evaluation of that
    point (trex.recorder.LastProbs); whatever the kernel or the stages did, they must be exactly the
    classifier's at the recorded latents (here P(class 0) = sigmoid(3 z))."""
    runs = trex.sample(_posts(), kernel(), num_chains=8, num_warmup=40, num_samples=30, seed=3,
                       store_images=False, progress=False, **kw)
    for res in runs:
        z = torch.as_tensor(res.latents[..., 0])
        np.testing.assert_allclose(res.probs[..., 0], torch.sigmoid(3 * z).numpy(), rtol=0, atol=2e-6)


def test_kept_draws_cost_no_extra_classifier_pass():
    """RWM evaluates each proposal once; recording the kept draws adds no classifier rows on top."""
    dist, clf = trex.LatentGaussian(_Identity(), 1), _CountingSmooth()
    posts = [trex.RelaxedPosterior(dist, clf, t, sigma=s, output="probs") for t, s in TARGETS]
    B, W, S = 3 * 8, 10, 20
    trex.sample(posts, RWM(), num_chains=8, num_warmup=W, num_samples=S, seed=0, store_images=False,
                progress=False, init="prior", sigma_schedule="constant", replace_stuck=False)
    # the starts and one proposal per chain and step; the end of warm-up's look for stuck chains
    # reads the probabilities the run already has
    assert clf.rows == B * (1 + W + S)


def _flat_fit(z, probs, **kw):
    """A 'surrogate' that knows nothing: the same probabilities everywhere, so its trajectories feel only
    the prior and a narrow level set rejects nearly all of them."""
    from trex.surrogate import LogitSurrogate
    net = LogitSurrogate(z.shape[1], probs.shape[1])
    torch.nn.init.zeros_(net.net[-1].weight)
    torch.nn.init.zeros_(net.net[-1].bias)
    return net.eval().requires_grad_(False), {"points": len(z)}


@pytest.mark.parametrize("fallback", [0.1, None], ids=["fallback", "no-fallback"])
def test_a_target_whose_surrogate_acceptance_collapses_falls_back_to_exact_gradients(monkeypatch, fallback):
    """A useless surrogate for two targets: the narrow one (σ = 0.05) rejects nearly every trajectory
    the surrogate leads, the wide one (σ = 1) does not. With the fallback, only the narrow target's
    chains switch to exact gradients; its acceptance recovers and its mean and variance match
    quadrature. Without it, the narrow target stays below the threshold: the case the fallback is for."""
    import trex.stages
    monkeypatch.setattr(trex.stages, "fit_surrogate", _flat_fit)
    dist, clf = trex.LatentGaussian(_Identity(), 1), _Smooth()
    posts = [trex.RelaxedPosterior(dist, clf, t, sigma=s, output="probs")
             for t, s in (("p:0=0.7,1=0.3", 0.05), ("p:0=0.5,1=0.5", 1.0))]
    kernel = HMC(surrogate=True, surrogate_max_steps=32, surrogate_fallback=fallback)
    runs = trex.sample(posts, kernel, num_chains=32, num_warmup=150, num_samples=300, seed=0,
                       store_images=False, progress=False)
    narrow, wide = runs
    if fallback is None:
        assert "fallback" not in narrow.meta
        assert narrow.diagnostics["accept_prob_mean"] < 0.1 < wide.diagnostics["accept_prob_mean"]
        return
    fb = narrow.meta["fallback"]
    assert fb["at_step"] == 120 and fb["targets"] == [0] and fb["exact_gradients"], fb
    assert not wide.meta["fallback"]["exact_gradients"]
    assert fb["accept"][0] < 0.1 < fb["accept"][1]
    assert narrow.diagnostics["accept_prob_mean"] > 0.5
    _check_moments(narrow, posts[0])
    _check_moments(wide, posts[1])
    # exact gradients again, for the narrow target's 32 chains only (at most max_steps each per step)
    assert 0 < narrow.meta["grad_evals"] <= 32 * kernel.max_steps * (150 - 120 + 300) + 2 * 64


def test_a_fallback_check_before_the_fit_is_refused():
    with pytest.raises(trex.errors.UserError, match="surrogate_check"):
        HMC(surrogate=True, surrogate_at=0.6, surrogate_check=0.5)
