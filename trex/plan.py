"""The plan of a sampling run: everything that defines it besides the posterior and the sampler,
checked once when it is made and frozen after that."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from trex.errors import UserError
from trex.schedules import make_schedule

INITS = ("prior", "prior_best", "prior_resample")
# the fields that make two runs different runs (the rest only change how a run shows or saves itself)
SIGNED = ("num_chains", "num_warmup", "num_samples", "thin", "seed", "init", "init_candidates", "sigma_schedule",
          "resample", "replace_stuck")


@dataclass(frozen=True)
class Plan:
    """num_chains chains; num_warmup warm-up steps (σ annealed by `sigma_schedule`, chains started by
    `init` from init_candidates × num_chains prior draws, SMC-style `resample`, `replace_stuck`), then
    num_samples kept draws taken every `thin` steps; `tol` is the "within" distance of the summaries.
    With num_chains per target, a run of T targets holds T × num_chains chains."""

    num_chains: int = 64
    num_warmup: int = 500
    num_samples: int = 1000
    thin: int = 1
    seed: int = 0
    init: object = "prior_best"  # one of INITS, or a (num_chains, D) tensor
    init_candidates: int = 16
    sigma_schedule: object = "geometric"
    resample: bool = False
    replace_stuck: bool = True
    tol: float = 0.1
    surrogate_cache: object = None  # a folder: the surrogate of each model pair is kept there and reused
    store_images: bool = True
    checkpoint_every: int = 100
    progress: bool = True

    def __post_init__(self):
        for name, low in (("num_chains", 1), ("num_warmup", 0), ("num_samples", 1), ("thin", 1),
                          ("init_candidates", 1), ("checkpoint_every", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise UserError(f"{name} must be a whole number >= {low}, got {v!r}")
        if not isinstance(self.init, torch.Tensor) and self.init not in INITS:
            raise UserError(f"init must be one of {', '.join(INITS)} (or a tensor), got {self.init!r}")
        try:
            schedule = make_schedule(self.sigma_schedule)
        except (ValueError, TypeError) as e:
            raise UserError(str(e)) from None
        if self.resample and not hasattr(schedule, "end"):
            raise UserError("resample=True resamples chains each time σ shrinks, and a constant σ schedule never "
                            "shrinks it: use sigma_schedule=geometric (the default) or drop resample")
        if self.resample and isinstance(self.init, str) and self.init == "prior_best":
            # best-of starts over-weight where the likelihood peaks, and the SMC weights would not know it
            print("resample=True: init switched from prior_best to prior_resample, so the starts carry the "
                  "weights the resampling assumes", flush=True)
            object.__setattr__(self, "init", "prior_resample")

    @classmethod
    def of(cls, mapping) -> "Plan":
        """A plan from any mapping (a config, keyword arguments); keys that are not plan fields are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: mapping[k] for k in mapping if k in names})

    @property
    def schedule(self):
        return make_schedule(self.sigma_schedule)

    @property
    def total_steps(self) -> int:
        return self.num_warmup + self.num_samples * self.thin

    def signed(self) -> dict:
        """The fields that define the run, as the resume signature records them."""
        d = {k: getattr(self, k) for k in SIGNED}
        d.update(sigma_schedule=repr(self.schedule), resample=bool(self.resample),
                 replace_stuck=bool(self.replace_stuck))
        return d
