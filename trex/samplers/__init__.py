"""MCMC samplers for the latent posterior. Pure torch (+ pyro for NUTS)."""
import re

from trex.errors import UserError

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
        raise UserError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}") from None
    try:
        return cls(**kwargs)
    except TypeError as e:  # a setting this sampler does not have
        bad = re.search(r"argument '(\w+)'", str(e))
        raise UserError(f"sampler {name} has no setting {bad.group(1) if bad else str(e)!r}") from None


__all__ = ["HMC", "RWM", "NUTSPyro", "Hamiltorch", "leapfrog", "make_sampler", "SAMPLERS",
           "State", "Info", "HMCInfo", "HMCParams", "RWMParams", "RunResult"]
