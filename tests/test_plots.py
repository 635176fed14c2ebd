"""Figures: the grid's choice of draws."""
import numpy as np
import torch

from trex.plots import best_indices
from trex.results import SampleSet


def _set(distances):
    """A 2-class SampleSet whose draw (c, s) sits `distances[c][s]` from the target p = (1, 0)."""
    d = np.asarray(distances, dtype=float)
    probs = np.stack([1 - d, d], -1)
    c, s = d.shape
    z = np.zeros((c, s))
    return SampleSet(latents=np.zeros((c, s, 2)), probs=probs, logdensity=z, accepted=z.astype(bool),
                     divergent=z.astype(bool), step_size=np.zeros(c), ideal=np.array([1.0, 0.0]))


def test_slots_after_the_per_chain_bests_go_to_the_closest_draws():
    """Chain 0 is stuck far from the target, chain 1 is on it. After one slot per chain, the grid
    must show chain 1's next-best draws, not chain 0's (the old code filled the rest in index
    order, so a 64-slot grid of 16 chains showed 48 draws of chain 0)."""
    s = _set([[0.50, 0.51, 0.52, 0.53, 0.54], [0.05, 0.01, 0.04, 0.02, 0.03]])
    idx = best_indices(s, n=5)
    assert list(idx) == [6, 0, 8, 9, 7]  # chain 1's best, chain 0's best, then chain 1 by distance
    assert list(best_indices(s, n=3, per_chain=False)) == [6, 8, 9]


def test_excluded_chains_get_no_slot_of_their_own():
    s = _set([[0.50, 0.51, 0.52], [0.05, 0.01, 0.04], [0.30, 0.20, 0.10]])
    idx = best_indices(s, n=4, exclude_chains=[0])
    assert list(idx) == [4, 8, 5, 3]  # bests of chains 1 and 2, then the closest remaining draws
    assert len(set(best_indices(s, n=9))) == 9  # every draw once when the grid asks for all


def test_atypical_draws_get_a_red_frame_and_typical_ones_a_black_one():
    from trex.plots import framed
    out = framed(torch.full((2, 1, 4, 4), 0.5), atypical=np.array([False, True]), width=1)
    assert out.shape == (2, 3, 6, 6)
    assert out[0, :, 0, 0].tolist() == [0, 0, 0] and out[1, :, 0, 0].tolist() == [1, 0, 0]
    assert torch.all(out[:, :, 1:-1, 1:-1] == 0.5)


def test_typicality_figure_spreads_over_chains(tmp_path):
    from trex.plots import _spread
    chains = np.repeat(np.arange(3), 4)
    order = np.array([0, 1, 2, 3, 4, 8, 5, 9, 6, 7, 10, 11])
    assert list(_spread(order, chains, 5)) == [0, 4, 8, 1, 2]
