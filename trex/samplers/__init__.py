"""MCMC samplers for the latent posterior. Pure torch (+ pyro for NUTS)."""

from .base import Info, RunResult, State
from .hamiltorch_adapter import Hamiltorch
from .hmc import HMC, HMCInfo, HMCParams, leapfrog
from .nuts_pyro import NUTSPyro
from .rwm import RWM, RWMParams

SAMPLERS = {"hmc": HMC, "rwm": RWM, "nuts": NUTSPyro, "hamiltorch": Hamiltorch}


def make_sampler(name: str, **kwargs):
    """Build a sampler by name: hmc, rwm (step kernels) or nuts, hamiltorch (run(...))."""
    try:
        cls = SAMPLERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}") from None
    return cls(**kwargs)


__all__ = ["HMC", "RWM", "NUTSPyro", "Hamiltorch", "leapfrog", "make_sampler", "SAMPLERS",
           "State", "Info", "HMCInfo", "HMCParams", "RWMParams", "RunResult"]
