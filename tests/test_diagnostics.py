import numpy as np
import torch

from trex.diagnostics import mcse_mean, summarize


def iid(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def test_iid_chains_have_rhat_one_and_full_ess():
    s = summarize(iid((4, 1000, 3)))
    assert s["num_chains"] == 4 and s["num_samples"] == 1000
    assert s["rhat"].shape == (3,) and s["ess"].shape == (3,)
    assert s["rhat_max"] < 1.01
    assert np.all(np.abs(s["ess"] / 4000 - 1) < 0.2)
    assert s["ess_min"] == s["ess"].min()


def test_chains_with_different_means_have_large_rhat():
    x = iid((4, 500, 2)) + np.arange(4)[:, None, None]
    assert summarize(x)["rhat_max"] > 1.5


def test_autocorrelated_chain_ess():
    # AR(1) with rho: ESS ~= N (1 - rho) / (1 + rho)
    rho, n, rng = 0.9, 5000, np.random.default_rng(1)
    x = np.zeros((4, n))
    x[:, 0] = rng.normal(size=4)
    eps = rng.normal(size=(4, n)) * np.sqrt(1 - rho**2)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + eps[:, t]
    ess = summarize(x)["ess"][0]
    assert abs(ess / (4 * n * (1 - rho) / (1 + rho)) - 1) < 0.3


def test_single_chain_and_torch_input():
    s = summarize(torch.from_numpy(iid((1, 2000, 2))))
    assert np.all(np.isfinite(s["rhat"])) and s["rhat_max"] < 1.02
    assert np.all(np.abs(s["ess"] / 2000 - 1) < 0.2)
    # a drifting single chain is caught by splitting it
    drift = iid((1, 2000)) + np.linspace(0, 3, 2000)
    assert summarize(drift)["rhat_max"] > 1.2


def test_mcse_mean_of_iid_draws():
    x = iid((4, 1000, 2), seed=2) * 3.0
    assert np.allclose(mcse_mean(x), 3.0 / np.sqrt(4000), rtol=0.15)
    assert mcse_mean(x[..., 0]).shape == (1,)


def test_ess_chain_sum_judges_chains_alone():
    from trex.diagnostics import ess_chain_sum
    x = iid((8, 500, 2), seed=3)
    assert np.all(np.abs(ess_chain_sum(x) / 4000 - 1) < 0.2)
    shifted = x + 5 * np.arange(8)[:, None, None]  # chains in different modes
    assert summarize(shifted)["ess_min"] < 100  # pooled ESS sees the disagreement
    assert np.all(np.abs(ess_chain_sum(shifted) / 4000 - 1) < 0.2)  # each chain alone looks fine
