"""Bayes-TrEx: sample in-distribution inputs that make a classifier show a chosen confidence.

Pure torch (+ Pyro for NUTS); no Lightning, no Hydra.

    dist = trex.LatentGaussian(generator, latent_dim=5)
    post = trex.RelaxedPosterior(dist, classifier, "ambiguous:1,7", sigma=0.05)
    run = trex.sample(post, trex.samplers.HMC(), num_chains=64, num_warmup=500, num_samples=1000)
"""
from trex import analysis, samplers, targets
from trex.distributions import LatentGaussian
from trex.errors import UserError
from trex.plan import Plan
from trex.posterior import RelaxedPosterior
from trex.results import SampleSet
from trex.runner import sample
from trex.schedules import Constant, Geometric
from trex.stacked import Stacked

__all__ = ["analysis", "LatentGaussian", "Plan", "RelaxedPosterior", "SampleSet", "sample", "samplers", "targets",
           "Constant", "Geometric", "Stacked", "UserError"]
