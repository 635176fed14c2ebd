"""t-SNE latent view on latent clusters whose labels are known: the map keeps them apart, and overlaid
samples land beside the cluster they were drawn from (one fit, one coordinate system)."""
import numpy as np
import pytest
import torch
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from trex.analysis.latent_view import latent_tsne, latent_view, pick_overlays, prior_predictions

pytestmark = pytest.mark.usefixtures("one_thread")


def clusters(n=200, dim=5, gap=6.0, seed=0):
    """Two unit-variance Gaussian clusters `gap` apart (labels 0 and 1), shuffled, and their centres."""
    rng = np.random.default_rng(seed)
    centres = np.stack([np.zeros(dim), np.full(dim, gap / np.sqrt(dim))])
    labels = rng.permutation(np.repeat([0, 1], n))
    return centres[labels] + rng.normal(size=(2 * n, dim)), labels, centres, rng


def nearest_labels(points, emb, labels, k=5):
    """Majority label of each point's k nearest prior draws in the embedding."""
    d = ((points[:, None, :] - emb[None]) ** 2).sum(-1)
    near = labels[np.argsort(d, axis=1)[:, :k]]
    return (near.mean(1) > 0.5).astype(int)


def test_separated_clusters_stay_separated_and_overlays_land_next_to_their_cluster(tmp_path):
    z, labels, centres, rng = clusters()
    overlay = {"near 0": centres[0] + 0.5 * rng.normal(size=(15, 5)),
               "near 1": centres[1] + 0.5 * rng.normal(size=(15, 5))}
    emb, fig = latent_view(z, labels, overlay, class_names=["zero", "one"], seed=0)
    assert emb["prior"].shape == (400, 2) and {k: v.shape for k, v in emb["samples"].items()} == \
        {"near 0": (15, 2), "near 1": (15, 2)}
    knn = cross_val_score(KNeighborsClassifier(5), emb["prior"], labels, cv=5).mean()
    assert knn > 0.95
    assert (nearest_labels(emb["samples"]["near 0"], emb["prior"], labels) == 0).mean() > 0.95
    assert (nearest_labels(emb["samples"]["near 1"], emb["prior"], labels) == 1).mean() > 0.95
    # the figure: one dot series per class, one marker series per overlay, named in the legend
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == [f"zero ({(labels == 0).sum()})", f"one ({(labels == 1).sum()})", "near 0 (15)", "near 1 (15)"]
    fig.savefig(tmp_path / "latent.png", dpi=60)


def test_one_fit_puts_a_copy_of_a_prior_draw_on_top_of_it():
    z, labels, _, _ = clusters(n=150, seed=1)
    pick = np.arange(0, 300, 30)
    emb = latent_tsne(z, z[pick] + 1e-6, seed=0)
    samples = emb["samples"]["samples"]
    d = ((samples[:, None] - emb["prior"][None]) ** 2).sum(-1)
    d[np.arange(len(pick)), pick] = np.inf
    # each copy is nearer its original than any other draw is to it
    twin = ((samples - emb["prior"][pick]) ** 2).sum(-1)
    assert (twin < d.min(1)).all()


def test_overlays_are_thinned_evenly_and_sample_sets_go_in_by_their_latents():
    class Fake:  # a SampleSet's latents: (chains, draws, D)
        latents = np.arange(2 * 50 * 3, dtype=float).reshape(2, 50, 3) / 100

    prior = np.random.default_rng(0).normal(size=(60, 3))
    emb = latent_tsne(prior, Fake(), max_overlay=11, seed=0)
    kept = emb["overlay_latents"]["samples"]
    assert kept.shape == (11, 3) and (kept[0] == Fake.latents[0, 0]).all() and (kept[-1] == Fake.latents[1, -1]).all()
    with pytest.raises(ValueError, match="latent dimension 2"):
        latent_tsne(prior, np.zeros((4, 2)))


def test_prior_predictions_label_each_draw_by_the_classifier():
    class Identity(nn.Module):
        latent_dim = 2

        def forward(self, z):
            return z

    sign = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        sign.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))  # output 1 iff z_0 > 0
    z, labels = prior_predictions(Identity(), sign, n=300, seed=5, batch_size=64)
    assert z.shape == (300, 2) and (labels == (z[:, 0] > 0)).all()
    z2, named = prior_predictions(Identity(), sign, n=300, seed=5, classes=[3, 8])
    np.testing.assert_array_equal(z, z2)
    assert set(named) == {3, 8} and ((named == 8) == (z[:, 0] > 0)).all()


def test_a_map_keeps_the_best_reached_targets_in_run_order():
    class Set:
        def __init__(self, near):
            self.meta = {"diagnostics": {"near_target_0.1": near}} if near is not None else {}
    sets = {"a": Set(0.5), "b": Set(0.9), "c": Set(None), "d": Set(0.99), "e": Set(0.9)}
    assert list(pick_overlays(sets, 3)) == ["b", "d", "e"]  # 0.99, then the two 0.9s; back in run order
    assert list(pick_overlays(sets, 4)) == ["a", "b", "d", "e"]  # the unscored set comes last
    assert list(pick_overlays(sets, 2)) == ["b", "d"]  # a tie at the cut: the earlier in the run
    assert list(pick_overlays(sets, None)) == list(sets) == list(pick_overlays(sets, 5))
    with pytest.raises(ValueError, match="at least one target"):
        pick_overlays(sets, 0)
