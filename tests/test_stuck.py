"""Stuck chains: found, replaced during warm-up by copies of chains that move, reported when left alone."""
import numpy as np
import pytest
import torch

import trex
from trex.samplers import HMC
from trex.stuck import StuckWatch, stuck_chains

pytestmark = pytest.mark.usefixtures("one_thread")


def test_check_replaces_only_stuck_chains_with_copies_of_moving_ones():
    from trex.samplers.base import State
    watch = StuckWatch(4, num_warmup=100, anneal_end=0, device="cpu", window=3, every=10)
    for accepted in ([1, 0, 1, 1], [1, 0, 1, 1], [1, 0, 1, 0]):
        watch.observe(torch.tensor(accepted, dtype=torch.bool))
    pos = torch.arange(4.0)[:, None]
    state = State(pos, -pos[:, 0], None)
    far = {0: 0.05, 1: 0.05, 2: 0.5, 3: 0.05}  # chain 1 idle for 3 steps, chain 2 off the target
    new = watch.check(10, state, lambda z: torch.tensor([far[int(v)] for v in z[:, 0]]), torch.Generator().manual_seed(0))
    kept = new.position[:, 0].tolist()
    assert kept[0] == 0 and kept[3] == 3  # untouched
    assert kept[1] in (0, 3) and kept[2] in (0, 3)  # copies of the chains that move
    assert torch.equal(new.logdensity, -new.position[:, 0]) and watch.replaced == 2
    assert watch.idle[1] == 0 and watch.check(11, new, None, None) is new  # not a check step: nothing happens


def test_kept_draws_name_chains_that_never_move_or_sit_off_target():
    d = np.full((3, 60), 0.05)
    d[2] = 0.4  # far from the target
    acc = np.ones((3, 60), bool)
    acc[1, 5:] = False  # idle for the last 55 draws
    assert stuck_chains(d, acc) == [1, 2]
    assert stuck_chains(d[:1], acc[:1]) == []


class _Spike(torch.nn.Module):
    """P(class 0 | x) is 1 on a spike 0.001 wide at x = -3 and for x > 1.5. A chain on the spike
    rejects every move (any step leaves it, at a cost of about 200 nats at σ = 0.05), although
    the spike holds almost none of the posterior mass: the textbook stuck chain."""
    num_classes = 2

    def forward(self, x):
        x = x.reshape(-1)
        p0 = (torch.exp(-((x + 3) / 1e-3) ** 2) + torch.sigmoid(8 * (x - 1))).clamp(1e-6, 1 - 1e-6)
        return torch.stack([p0, 1 - p0], -1)


def test_a_chain_that_never_moves_is_replaced_or_reported():
    from test_runner import _Identity
    post = trex.RelaxedPosterior(trex.LatentGaussian(_Identity(), 1), _Spike(), "class:0", sigma=0.05,
                                 output="probs")
    z0 = torch.tensor([[-3.0], [2.0], [2.1], [2.2], [2.3], [2.4]])
    kw = dict(num_chains=6, num_warmup=120, num_samples=60, seed=0, progress=False, init=z0,
              sigma_schedule="constant", store_images=False)
    left = trex.sample(post, HMC(), replace_stuck=False, **kw)
    assert left.meta["replaced_stuck"] == 0 and left.diagnostics["stuck_chains"] == [0]
    assert left.meta["stuck_after_warmup"] == [0] and np.allclose(left.latents[0], -3.0, atol=1e-3)
    fixed = trex.sample(post, HMC(), **kw)
    assert fixed.meta["replaced_stuck"] >= 1
    assert fixed.diagnostics["stuck_chains"] == [] and fixed.meta["stuck_after_warmup"] == []
    assert (fixed.latents[0] > 1.0).all()  # chain 0 now samples the region that holds the mass
