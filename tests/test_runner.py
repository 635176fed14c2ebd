"""End to end on tiny real models: the runner, SampleSet save/load, resume after interruption."""
import numpy as np
import pytest
import torch

import trex
from trex.samplers import HMC, RWM


# small batched ops and the surrogate fit run faster on one thread than fighting for two
pytestmark = pytest.mark.usefixtures("one_thread")


def make_post(tiny_models, target="class:3"):
    decoder, clf = tiny_models
    return trex.RelaxedPosterior(trex.LatentGaussian(decoder), clf, target, sigma=0.05)


def test_class_target_beats_prior(tiny_models):
    post = make_post(tiny_models, "class:3")
    res = trex.sample(post, HMC(), num_chains=16, num_warmup=150, num_samples=60, seed=0, progress=False)
    hits = (res.flat("probs").argmax(-1) == 3) & (res.flat("probs")[:, 3] > 0.9)
    with torch.no_grad():
        prior = post.probs(post.distribution.sample_prior(2000, torch.Generator().manual_seed(1)))
    prior_hits = ((prior.argmax(-1) == 3) & (prior[:, 3] > 0.9)).float().mean().item()
    assert hits.mean() > 0.8
    assert hits.mean() > 5 * prior_hits
    assert res.latents.shape == (16, 60, 5) and res.images.shape == (16, 60, 1, 28, 28)
    assert res.images.dtype == np.uint8 and res.probs.shape == (16, 60, 10)
    d = res.diagnostics
    assert np.isfinite(d["rhat_max"]) and d["ess_bulk_min"] > 0 and 0 < d["accept_rate"] <= 1


def test_rwm_runs_through_the_same_loop(tiny_models):
    post = make_post(tiny_models, "class:1")
    res = trex.sample(post, RWM(), num_chains=8, num_warmup=100, num_samples=50, seed=0, progress=False)
    assert res.meta["sampler"] == "rwm" and res.accepted.shape == (8, 50)
    assert res.flat("probs")[:, 1].mean() > 0.5


def test_save_load_round_trip(tiny_models, tmp_path):
    post = make_post(tiny_models, "ambiguous:3,8")
    res = trex.sample(post, HMC(), num_chains=4, num_warmup=30, num_samples=10, seed=3, progress=False)
    res.save(tmp_path / "run")
    back = trex.SampleSet.load(tmp_path / "run")
    for k in ("latents", "probs", "logdensity", "accepted", "divergent", "step_size", "ideal", "images"):
        np.testing.assert_array_equal(getattr(back, k), getattr(res, k))
    assert back.meta["target"] == "ambiguous:3,8" and back.meta["classes"] == list(range(10))
    assert back.diagnostics["near_target_0.1"] == res.diagnostics["near_target_0.1"]


class Interrupt(Exception):
    pass


class DyingHMC(HMC):
    """HMC that dies after `steps` steps, like a run killed by the user."""

    def __init__(self, steps, **kw):
        super().__init__(**kw)
        self._left = steps

    def step(self, *a, **k):
        self._left -= 1
        if self._left < 0:
            raise Interrupt
        return super().step(*a, **k)


def test_resume_loses_nothing(tiny_models, tmp_path):
    """A run killed midway and started again gives the same samples as an uninterrupted one."""
    kw = dict(num_chains=4, num_warmup=40, num_samples=30, seed=5, progress=False, checkpoint_every=10)
    full = trex.sample(make_post(tiny_models), HMC(max_steps=16), **kw)
    ck = tmp_path / "resume.pt"
    with pytest.raises(Interrupt):
        trex.sample(make_post(tiny_models), DyingHMC(55, max_steps=16), checkpoint=ck, **kw)
    assert ck.exists()
    resumed = trex.sample(make_post(tiny_models), HMC(max_steps=16), checkpoint=ck, **kw)
    assert resumed.latents.shape == full.latents.shape == (4, 30, 5)
    np.testing.assert_allclose(resumed.latents, full.latents, rtol=1e-5, atol=1e-6)
    assert not ck.exists()  # a finished run removes its resume file


def test_resume_refuses_a_different_run(tiny_models, tmp_path):
    ck = tmp_path / "resume.pt"
    torch.save({"signature": ("class:9", 1, 1, 1, 1, 0.05)}, ck)
    with pytest.raises(ValueError, match="different run"):
        trex.sample(make_post(tiny_models), HMC(), num_chains=4, num_warmup=5, num_samples=5, checkpoint=ck,
                    progress=False)


class _Identity(torch.nn.Module):
    latent_dim = 1

    def forward(self, z):
        return z


class _TwoSided(torch.nn.Module):
    """P(class 0 | x) is near 1 for x > 1 and for x < -2 and near 0 in between: at σ = 0.05 the
    level set is two regions that no chain crosses, holding unequal posterior mass."""
    num_classes = 2

    def forward(self, x):
        x = x.reshape(-1)
        p0 = (torch.sigmoid(8 * (x - 1)) + torch.sigmoid(-8 * (x + 2))).clamp(1e-6, 1 - 1e-6)
        return torch.stack([p0, 1 - p0], -1)


def _left_share_exact(post):
    z = torch.linspace(-8, 8, 200001)
    with torch.no_grad():
        w = torch.softmax(post.logdensity(z[:, None]).double(), 0)
    return float(w[z < -0.5].sum())


def test_resampled_warmup_gives_separate_regions_their_posterior_share():
    """Chains cannot move between the two regions, so only the warm-up decides how many end in
    each. The SMC warm-up (importance-resampled start, resampling as σ shrinks) matches the
    quadrature share within 3 binomial standard errors; plain prior starts do not."""
    post = trex.RelaxedPosterior(trex.LatentGaussian(_Identity(), 1), _TwoSided(), "class:0", sigma=0.05,
                                 output="probs")
    exact = _left_share_exact(post)  # about 0.096
    n = 512
    se = (exact * (1 - exact) / n) ** 0.5
    kw = dict(num_chains=n, num_warmup=200, num_samples=10, store_images=False, progress=False)
    for seed in (0, 1):
        smc = trex.sample(post, HMC(), init="prior_resample", resample=True, seed=seed, **kw)
        left = float((smc.latents[:, -1, 0] < -0.5).mean())
        assert abs(left - exact) < 3 * se, (left, exact)
        assert smc.meta["resampled"] >= 1 and smc.meta["resample"] is True
        assert smc.diagnostics["near_target_0.1"] > 0.95
    plain = trex.sample(post, HMC(), init="prior", seed=0, replace_stuck=False, **kw)
    # the test can tell: plain starts fall outside the band SMC must fall in (0.14 here, 0.17 with the
    # shared trajectory jitter before each chain drew its own)
    assert float((plain.latents[:, -1, 0] < -0.5).mean()) - exact > 3 * se


def test_systematic_resample_follows_the_weights():
    w = torch.tensor([0.5, 0.25, 0.125, 0.125, 0.0])
    idx = trex.runner.systematic_resample(w.log(), 800, torch.Generator().manual_seed(0))
    counts = torch.bincount(idx, minlength=5)
    assert counts.tolist() == [400, 200, 100, 100, 0]  # systematic: each count is n·w rounded
    assert trex.runner.systematic_resample(torch.full((3,), -float("inf")), 3, torch.Generator()) is None


def test_init_names_are_checked(tiny_models):
    with pytest.raises(ValueError, match="prior_resample"):
        trex.sample(make_post(tiny_models), HMC(), num_chains=2, num_warmup=2, num_samples=2, init="best",
                    progress=False)


def test_resample_with_a_whole_run_backend_is_refused(tiny_models):
    with pytest.raises(ValueError, match="resample=True needs a step-by-step kernel"):
        trex.sample(make_post(tiny_models), trex.samplers.NUTSPyro(), num_chains=1, num_warmup=2, num_samples=2,
                    resample=True, progress=False)


class _Smooth(torch.nn.Module):
    """Two classes, P(class 0 | x) = sigmoid(3 x): smooth, so a small surrogate can learn it."""
    num_classes = 2

    def forward(self, x):
        p0 = torch.sigmoid(3 * x.reshape(-1))
        return torch.stack([p0, 1 - p0], -1)


def test_surrogate_hmc_matches_quadrature_and_skips_classifier_gradients():
    """Surrogate-gradient HMC on a 1-D posterior whose mean and variance come from quadrature:
    within 4 Monte Carlo standard errors. After the fit, sampling calls the classifier without a
    gradient, once per step."""
    post = trex.RelaxedPosterior(trex.LatentGaussian(_Identity(), 1), _Smooth(), "p:0=0.7,1=0.3", sigma=0.05,
                                 output="probs")
    z = torch.linspace(-6, 6, 200001)
    with torch.no_grad():
        w = torch.softmax(post.logdensity(z[:, None]).double(), 0)
    mean = float((w * z).sum())
    var = float((w * (z - mean) ** 2).sum())
    kernel = HMC(surrogate=True, surrogate_fit_steps=300, surrogate_max_steps=32)
    before = (repr(vars(kernel)), repr(vars(post)))
    res = trex.sample(post, kernel, num_chains=32, num_warmup=100, num_samples=200, seed=0, store_images=False,
                      progress=False)
    x = res.latents[..., 0]
    mcse = trex.diagnostics.mcse_mean(x)[0]
    assert abs(x.mean() - mean) < 4 * mcse, (x.mean(), mean, mcse)
    sq = (x - mean) ** 2
    assert abs(sq.mean() - var) < 4 * trex.diagnostics.mcse_mean(sq)[0], (sq.mean(), var)
    meta = res.meta
    assert meta["surrogate"]["points"] > 1000 and meta["surrogate"]["val_prob_err_mean"] < 0.02
    assert meta["guide_evals"] > 0
    # exact gradients only during the first 60 % of warm-up (plus one per σ change)
    assert meta["batched_grad_evals"] < 60 * kernel.max_steps + 30
    # neither the kernel nor the posterior was changed: both are ready for the next run as they came
    assert (repr(vars(kernel)), repr(vars(post))) == before
    assert res.diagnostics["accept_rate"] > 0.5


@pytest.mark.parametrize("die_at", [15, 27, 45], ids=["before-fit", "at-fit", "after-fit"])
def test_surrogate_run_resumes_like_an_uninterrupted_one(tiny_models, tmp_path, die_at):
    """Interrupted while still collecting points (the collection is in the checkpoint), with the last
    checkpoint exactly where the fit happens, or after the fit (the surrogate is in the checkpoint):
    the resumed run gives the same draws. The fit is at step 24 (60 % of 40); checkpoints every 8."""
    kw = dict(num_chains=4, num_warmup=40, num_samples=20, seed=3, progress=False, checkpoint_every=8,
              store_images=False)
    sur = dict(max_steps=16, surrogate=True, surrogate_fit_steps=200, surrogate_max_steps=32)
    full = trex.sample(make_post(tiny_models), HMC(**sur), **kw)
    ck = tmp_path / "resume.pt"
    with pytest.raises(Interrupt):
        trex.sample(make_post(tiny_models), DyingHMC(die_at, **sur), checkpoint=ck, **kw)
    resumed = trex.sample(make_post(tiny_models), HMC(**sur), checkpoint=ck, **kw)
    np.testing.assert_allclose(resumed.latents, full.latents, rtol=1e-5, atol=1e-6)
    fit = lambda r: {k: v for k, v in r.meta["surrogate"].items() if k != "fit_s"}
    assert fit(resumed) == fit(full)  # the same points, so the same fit


def test_point_tap_keeps_a_uniform_sample_of_what_it_saw():
    from trex.surrogate import PointTap
    tap = PointTap(capacity=500, seed=0)
    for i in range(40):  # 40 batches of 100 points, labelled by batch
        z = torch.full((100, 1), float(i))
        tap(z, torch.ones(100, 2) / 2)
    assert len(tap) == 500 and tap.seen == 4000
    # each batch holds 1/40 of what was seen: the early ones are not over-represented
    counts = torch.bincount(tap.z[:, 0].long(), minlength=40).float()
    assert abs(float(counts[:20].sum()) - 250) < 4 * (500 * 0.25) ** 0.5
    tap(torch.tensor([[float("nan")]]), torch.ones(1, 2) / 2)  # non-finite points are dropped
    assert tap.seen == 4000
