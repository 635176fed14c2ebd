"""Convergence diagnostics on draws shaped (chains C, samples S, dims D), via ArviZ.

R-hat is the rank-normalised split R-hat and ESS the bulk ESS (Vehtari et al. 2021).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

with warnings.catch_warnings():  # ArviZ 0.2x announces its refactor on import
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

# ArviZ logs a warning for single chains; summarize handles that case itself.
logging.getLogger("arviz").setLevel(logging.ERROR)


def _as_draws(x) -> np.ndarray:
    """Tensor or array (C, S, D) or (C, S) -> float64 numpy (C, S, D)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(f"expected draws shaped (chains, samples[, dims]), got {x.shape}")
    return x


def _rhat(chains: np.ndarray) -> float:
    # ArviZ needs >= 2 chains; a lone chain is cut in halves, so R-hat compares its quarters
    if chains.shape[0] == 1:
        half = chains.shape[1] // 2
        chains = np.stack([chains[0, :half], chains[0, half:2 * half]])
    return float(az.rhat(chains, method="rank"))


def summarize(positions) -> dict:
    """Per-dimension mean, std, rank-normalised split R-hat, bulk ESS and MCSE of the mean,
    plus totals rhat_max and ess_min. Arrays are numpy (D,); totals are floats."""
    x = _as_draws(positions)
    dims = range(x.shape[-1])
    rhat = np.array([_rhat(x[..., d]) for d in dims])
    ess = np.array([float(az.ess(x[..., d], method="bulk")) for d in dims])
    return {
        "num_chains": x.shape[0],
        "num_samples": x.shape[1],
        "mean": x.mean(axis=(0, 1)),
        "std": x.std(axis=(0, 1), ddof=1),
        "rhat": rhat,
        "ess": ess,
        "mcse_mean": mcse_mean(x),
        "rhat_max": float(np.nanmax(rhat)),
        "ess_min": float(np.nanmin(ess)),
    }


def mcse_mean(x) -> np.ndarray:
    """Monte Carlo standard error of the mean per dimension, sd / sqrt(ESS_mean).
    x: (C, S, D) -> (D,), or (C, S) -> (1,)."""
    x = _as_draws(x)
    return np.array([float(az.mcse(x[..., d], method="mean")) for d in range(x.shape[-1])])


def ess_chain_sum(positions) -> np.ndarray:
    """Per dimension, the sum over chains of each chain's own bulk ESS (D,).

    This judges every chain alone, the way a single-chain run (the paper's NUTS) is judged. The
    pooled `summarize(...)["ess"]` is stricter: chains that settle in different parts of a
    multimodal posterior (e.g. different ways to be ambiguous) count as disagreeing, which no
    single chain can reveal. Report both.
    """
    x = _as_draws(positions)
    return np.array([sum(float(az.ess(x[c:c + 1, :, d], method="bulk")) for c in range(x.shape[0]))
                     for d in range(x.shape[-1])])
