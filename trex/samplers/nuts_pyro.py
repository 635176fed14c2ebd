"""The paper's sampler: Pyro NUTS on a potential function, one chain at a time.

Chains run sequentially in-process: Pyro's multiprocess chains are fragile on small
machines, and each chain gets its own seed and its own warm-up adaptation.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from .base import RunResult, evaluate


def _counting_potential(target, counter: list):
    """potential(z) = -log p(z); counts backward passes through a hook on the input."""

    def bump(grad):
        counter[0] += 1
        return grad

    def potential(params):
        z = params["z"]
        if z.requires_grad:
            z.register_hook(bump)
        return -target.logdensity(z[None])[0]

    return potential


def chain_seeds(seed: int, num_chains: int) -> list:
    """Distinct seeds per chain; seed + c would make run s chain 1 equal run s+1 chain 0."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, 2**62, (num_chains,), generator=g).tolist()


def _forked_rng(device: torch.device):
    # Pyro draws from torch's global generator; fork it so runs don't disturb the caller.
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


class NUTSPyro:
    """pyro.infer.NUTS(potential_fn=...) + pyro.infer.MCMC, with a run(...) interface.

    jit_compile is passed through but Pyro only JIT-compiles model-based potentials,
    so it has no effect here. num_grad_evals counts every gradient (warm-up included).
    accept_prob per draw is recovered from the kernel's running mean (private field;
    None if that ever disappears).
    """

    name = "nuts"

    def __init__(self, target_accept=0.8, max_tree_depth=10, jit_compile=False,
                 step_size=1.0, adapt_mass=True):
        self.target_accept, self.max_tree_depth = target_accept, max_tree_depth
        self.jit_compile, self.step_size, self.adapt_mass = jit_compile, step_size, adapt_mass

    def run(self, target, init_position: Tensor, num_warmup: int, num_samples: int,
            seed: int, progress: bool = True) -> RunResult:
        from pyro.infer import MCMC, NUTS

        num_chains = init_position.shape[0]
        counter, draws, accepts, divergent, step_sizes = [0], [], [], [], []
        seeds = chain_seeds(seed, num_chains)
        start = time.perf_counter()
        for c in range(num_chains):
            kernel = NUTS(potential_fn=_counting_potential(target, counter),
                          step_size=self.step_size, adapt_step_size=True,
                          adapt_mass_matrix=self.adapt_mass, full_mass=False,
                          target_accept_prob=self.target_accept,
                          max_tree_depth=self.max_tree_depth, jit_compile=self.jit_compile)
            accept = []
            mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=num_warmup,
                        initial_params={"z": init_position[c].detach().clone()},
                        hook_fn=_accept_recorder(accept), disable_progbar=not progress)
            with _forked_rng(init_position.device):
                torch.manual_seed(seeds[c])
                mcmc.run()
            draws.append(mcmc.get_samples()["z"].detach())
            flags = torch.zeros(num_samples, dtype=torch.bool)
            for i in mcmc.diagnostics()["divergences"]["chain 0"]:
                flags[int(i)] = True
            divergent.append(flags)
            accepts.append(accept if len(accept) == num_samples else None)
            step_sizes.append(float(kernel.step_size))

        positions = torch.stack(draws)  # (C, S, D)
        # one chain per call bounds the batch size on big generators
        logdensity = torch.stack([evaluate(target, z, False)[0] for z in positions])
        accept_prob = None
        if all(a is not None for a in accepts):
            accept_prob = torch.tensor(accepts, dtype=positions.dtype)
        return RunResult(positions, logdensity, accept_prob,
                         torch.stack(divergent).to(positions.device),
                         torch.tensor(step_sizes, dtype=positions.dtype),
                         counter[0], time.perf_counter() - start)


def _accept_recorder(out: list):
    """Hook turning the kernel's running mean of acceptance into per-draw values."""
    prev = [0.0]

    def hook(kernel, params, stage, i):
        if not stage.startswith("Sample"):
            return
        mean = getattr(kernel, "_mean_accept_prob", None)
        if mean is None:
            return
        mean = float(mean)
        out.append(min(1.0, max(0.0, mean * (i + 1) - prev[0] * i)))
        prev[0] = mean

    return hook
