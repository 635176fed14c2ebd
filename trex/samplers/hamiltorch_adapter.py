"""Optional adapter for hamiltorch (https://github.com/AdamCobb/hamiltorch).

hamiltorch is not on PyPI, so it is imported lazily and its absence is an ImportError
at construction time, with the install command in the message.
"""

from __future__ import annotations

import inspect
import time

import torch
from torch import Tensor

from .base import RunResult, evaluate
from .nuts_pyro import _counting_potential, _forked_rng, chain_seeds

MISSING = ("the 'hamiltorch' sampler needs the hamiltorch package, which is not on PyPI: "
           "install it with `pip install git+https://github.com/AdamCobb/hamiltorch`, "
           "or use sampler=hmc (the batched HMC in trex.samplers).")


class Hamiltorch:
    """hamiltorch.sample with Sampler.HMC_NUTS: fixed-length HMC whose step size is tuned
    by dual averaging during warm-up (hamiltorch's "NUTS" is not a no-U-turn sampler).

    hamiltorch reports neither per-draw acceptance nor divergences: accept_prob is None
    and divergent is all False.
    """

    name = "hamiltorch"

    def __init__(self, step_size=0.1, num_steps_per_sample=10, target_accept=0.8):
        try:
            import hamiltorch
        except ImportError as err:
            raise ImportError(MISSING) from err
        self._ht = hamiltorch
        self.step_size, self.num_steps = step_size, num_steps_per_sample
        self.target_accept = target_accept

    def run(self, target, init_position: Tensor, num_warmup: int, num_samples: int,
            seed: int, progress: bool = True) -> RunResult:
        ht = self._ht
        counter, draws, step_sizes = [0], [], []
        potential = _counting_potential(target, counter)
        accepted_kwargs = inspect.signature(ht.sample).parameters
        seeds = chain_seeds(seed, init_position.shape[0])
        start = time.perf_counter()
        for c in range(init_position.shape[0]):
            kwargs = dict(
                log_prob_func=lambda z: -potential({"z": z}),
                params_init=init_position[c].detach().clone(),
                # hamiltorch counts burn-in inside num_samples and returns the start point
                # first, so ask for one extra draw and keep the last num_samples
                num_samples=num_warmup + num_samples + 1,
                burn=num_warmup,
                num_steps_per_sample=self.num_steps,
                step_size=self.step_size,
                sampler=ht.Sampler.HMC_NUTS if num_warmup > 0 else ht.Sampler.HMC,
                integrator=ht.Integrator.EXPLICIT,
                desired_accept_rate=self.target_accept,
                debug=2,
                verbose=progress,
            )
            kwargs = {k: v for k, v in kwargs.items() if k in accepted_kwargs}
            with _forked_rng(init_position.device):
                torch.manual_seed(seeds[c])
                out = ht.sample(**kwargs)
            samples, extra = out if isinstance(out, tuple) else (out, None)
            draws.append(torch.stack([s.detach() for s in samples[-num_samples:]]))
            tuned = num_warmup > 0 and extra is not None
            step_sizes.append(float(extra) if tuned else float(self.step_size))

        positions = torch.stack(draws).to(init_position)
        logdensity = torch.stack([evaluate(target, z, False)[0] for z in positions])
        return RunResult(positions, logdensity, None,
                         torch.zeros(positions.shape[:2], dtype=torch.bool),
                         torch.tensor(step_sizes, dtype=positions.dtype),
                         counter[0], time.perf_counter() - start)
