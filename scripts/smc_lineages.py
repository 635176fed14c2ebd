"""How many distinct chains does the SMC warm-up keep? Counts the distinct ancestors each resample
leaves, on the quick MNIST VAE and classifier, ambiguous 1 vs 7, against the plain warm-up.

    python scripts/smc_lineages.py [--chains 16] [--warmup 200] [--samples 100]
"""
import argparse

import torch

import trex
import trex.runner as runner
from lightning_modules.classifier import load_classifier
from lightning_modules.loading import load_generator


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default="zoo/quick/mnist")
    ap.add_argument("--chains", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--samples", type=int, default=100)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    clf, classes = load_classifier(f"{a.zoo}/classifier.ckpt")
    dist = trex.LatentGaussian(load_generator(f"{a.zoo}/vae.ckpt"))
    seen, systematic = [], runner._systematic

    def spy(w, n, g):  # every resample goes through _systematic: note its distinct ancestors
        idx = systematic(w, n, g)
        seen.append((len(torch.unique(idx)), round(float(1 / (w * w).sum()), 1)))
        return idx

    runner._systematic = spy
    for resample, init in ((True, "prior_resample"), (False, "prior_best")):
        seen.clear()
        post = trex.RelaxedPosterior(dist, clf, "ambiguous:1,7", sigma=0.05, classes=classes)
        res = trex.sample(post, trex.samplers.HMC(), num_chains=a.chains, num_warmup=a.warmup,
                          num_samples=a.samples, seed=0, init=init, resample=resample, progress=False,
                          replace_stuck=False)
        d = res.diagnostics
        print(f"resample={resample}: (distinct ancestors of {a.chains}, weights' ESS) per resample {seen}; "
              f"latent R-hat {d['rhat_max']:.2f}, confidence R-hat {d['confidence_rhat_max']:.2f}, "
              f"within 0.1 {d['near_target_0.1']:.3f}")


if __name__ == "__main__":
    main()
