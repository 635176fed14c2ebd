"""Mode clustering on blobs whose number, shares and centres are known."""
import numpy as np
import pytest

from trex.analysis.modes import find_modes, modes_figure


def blobs(sizes, dim=6, spread=0.3, gap=10.0, seed=0):
    """Well-separated Gaussian blobs, shuffled: features (N, dim) and each draw's blob."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, gap, (len(sizes), dim))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[truth] + rng.normal(0, spread, (len(truth), dim))
    perm = rng.permutation(len(truth))
    return x[perm], truth[perm]


def test_three_blobs_give_three_modes_with_their_exact_shares():
    x, truth = blobs([100, 60, 40])
    out = find_modes(x)
    assert out["k"] == 3 and out["shares"].tolist() == [0.5, 0.3, 0.2]
    assert max(out["silhouette"], key=out["silhouette"].get) == 3 and out["silhouette"][3] > 0.9
    # the modes are the blobs (largest first), and each representative is its blob's most central draw
    assert (out["labels"] == truth).all()
    for m, rep in enumerate(out["representatives"]):
        members = np.flatnonzero(truth == m)
        centre = x[members].mean(0)
        assert rep == members[np.argmin(np.linalg.norm(x[members] - centre, axis=1))]


def test_one_blob_is_one_mode():
    x, _ = blobs([150])
    out = find_modes(x)
    assert out["k"] == 1 and out["shares"].tolist() == [1.0] and (out["labels"] == 0).all()
    assert max(out["silhouette"].values()) < 0.25  # no k in 2..6 finds structure
    assert out["representatives"][0] == np.argmin(np.linalg.norm(x - x.mean(0), axis=1))


def test_images_go_in_as_features_and_the_figure_shows_one_per_mode(tmp_path):
    # flattened images: a bright square in one of two corners, 70 / 30
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 30, (50, 1, 12, 12)).astype(np.uint8)
    imgs[:35, :, :5, :5] += 200
    imgs[35:, :, 7:, 7:] += 200
    out = find_modes(imgs)
    assert out["k"] == 2 and out["shares"] == pytest.approx([0.7, 0.3])
    assert out["representatives"][0] < 35 <= out["representatives"][1]
    fig = modes_figure(imgs, out, title="class:3")
    assert [ax.get_title() for ax in fig.axes] == ["mode 1: 70%", "mode 2: 30%"]
    fig.savefig(tmp_path / "modes.png", dpi=60)
