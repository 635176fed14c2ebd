"""The scene domain: renderer, camera geometry, the prior's rules, the proposal's MH ratio
(RWM through trex.sample against exact enumeration), and the counting questions."""
import math

import pytest
import torch

import trex
from trex.errors import UserError
from trex.scenes import Camera, Renderer, ScenePrior, make_scene, vocab
from trex.scenes import questions as Q

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def prior():
    return ScenePrior(num_objects=(3, 6), add_cone=True)


def test_render_is_deterministic_batched_and_in_range(prior):
    z = prior.sample_prior(5, torch.Generator().manual_seed(0))
    img, ids = prior.renderer.render(z)
    again, _ = prior.renderer.render(z)
    assert img.shape == (5, 3, 128, 128) and ids.shape == (5, 128, 128)
    assert torch.equal(img, again)
    assert 0 <= float(img.min()) and float(img.max()) <= 1
    # a scene's picture does not depend on its batch, up to float rounding: vectorised kernels
    # (sin, cos, matrix-vector products) round an element's last bit by where it sits in the batch,
    # which can flip a ray that grazes an edge or a shadow's rim; a scene mixed up with its
    # neighbour, or shaded with another's slots, changes thousands of pixels
    alone_img, alone_ids = map(torch.cat, zip(*[prior.renderer.render(z[i:i + 1]) for i in range(5)]))
    differ = (ids != alone_ids) | ((img - alone_img).abs().amax(1) > 1e-5)
    assert int(differ.sum()) <= 10, f"{int(differ.sum())} of {differ.numel()} pixels differ alone and batched"
    # every existing object is seen (5 scenes drawn with seed 0 have no object fully hidden) and no dormant one
    for i in range(5):
        exist = set(torch.nonzero(vocab.as_slots(z)[i, :, vocab.EXISTS]).flatten().tolist())
        assert set(ids[i].unique().tolist()) - {-1} == exist


def test_sphere_appears_where_the_camera_geometry_says():
    """A camera aimed at a sphere's centre sees it in the middle of the picture, as a disc whose
    radius follows from the sphere's angular size."""
    size, fov = 128, 36.0
    centre = torch.tensor([1.0, -0.5, 0.7])  # a large sphere rests at height r = 0.7
    eye = (6.0, -9.0, 8.0)
    cam = Camera(eye=eye, target=tuple(centre.tolist()), fov_deg=fov, size=size)
    r = Renderer(size=size, camera=cam)
    z = make_scene([dict(shape="sphere", colour="red", x=1.0, y=-0.5)])[None]
    _, ids = r.render(z)
    mask = ids[0] == 0
    rows, cols = torch.nonzero(mask, as_tuple=True)
    assert abs(rows.float().mean() - 63.5) < 0.5 and abs(cols.float().mean() - 63.5) < 0.5
    dist = (centre - torch.tensor(eye)).norm()
    radius_px = size / 2 * math.tan(math.asin(0.7 / dist)) / math.tan(math.radians(fov / 2))
    assert abs(mask.sum() / (math.pi * radius_px ** 2) - 1) < 0.05
    # and the default camera's projection of the centre lands on the sphere's pixels
    default = Renderer()
    _, ids = default.render(z)
    row, col = default.camera.project(centre).round().long().tolist()
    assert ids[0, row, col] == 0 and ids[0, 0, 0] == -1


def test_metal_differs_from_rubber_and_colours_differ():
    z = torch.stack([make_scene([dict(shape="cube", colour="blue", material=m, x=0, y=0)]) for m in vocab.MATERIALS])
    img, ids = Renderer().render(z)
    on = ids[0] == 0
    rubber, metal = img[0][:, on], img[1][:, on]
    assert (rubber - metal).abs().mean() > 0.05          # visibly different shading
    assert rubber[2].mean() > rubber[0].mean() + 0.2      # and blue is blue


def test_prior_overlap_rule_bounds_and_shapes():
    p = ScenePrior(num_objects=2, shapes=("cube", "sphere"), min_gap=0.1)
    need = 0.7 + 0.35 + 0.1  # large + small + gap

    def pair(dx, sizes=("large", "small")):
        return make_scene([dict(shape="cube", size=sizes[0], x=0, y=0), dict(shape="sphere", size=sizes[1], x=dx, y=0)])[None]
    assert torch.isinf(p.log_prior(pair(need - 0.01))).all()
    assert torch.isfinite(p.log_prior(pair(need + 0.01))).all()
    assert torch.isfinite(p.log_prior(pair(0.81, ("small", "small")))).all()
    assert torch.isinf(p.log_prior(pair(0.79, ("small", "small")))).all()
    assert torch.isinf(p.log_prior(pair(5.0))).all()                     # x outside [-3, 3]
    cyl = make_scene([dict(shape="cylinder", x=0, y=0), dict(shape="sphere", x=2, y=0)])[None]
    assert torch.isinf(p.log_prior(cyl)).all()                           # a shape this world does not have
    draws = p.sample_prior(300, torch.Generator().manual_seed(0))
    assert torch.isfinite(p.log_prior(draws)).all()
    assert set(vocab.as_slots(draws)[..., vocab.SHAPE].unique().tolist()) == {0.0, 1.0}
    # a dormant slot may sit anywhere: only existing objects collide
    p2 = ScenePrior(num_objects=(1, 2))
    z = pair(0.2)
    z[0, vocab.FIELDS + vocab.EXISTS] = 0
    assert torch.isfinite(p2.log_prior(z)).all()
    with pytest.raises(UserError, match="leaves no shapes"):
        ScenePrior(exclude=("cube", "sphere", "cylinder"))
    with pytest.raises(UserError, match="unknown shape"):
        ScenePrior(exclude=("pyramid",))


def test_proposal_stays_in_the_prior_support():
    p = ScenePrior(num_objects=(3, 6), exclude=("cube",))
    z = p.sample_prior(200, torch.Generator().manual_seed(1))
    z1, log_q = p.propose(z, torch.full((200,), 3.0), torch.Generator().manual_seed(2))
    s = vocab.as_slots(z1)
    assert torch.equal(log_q, torch.zeros(200))
    assert (s[..., vocab.X].abs() <= 3).all() and (s[..., vocab.ROT] < 2 * math.pi).all()
    assert not (s[..., vocab.SHAPE] == 0).any()                        # never proposes an excluded cube
    assert (vocab.as_slots(z1)[..., vocab.EXISTS] != vocab.as_slots(z)[..., vocab.EXISTS]).any()


class _Features(ScenePrior):
    """The prior with the scene tensor itself as its 'image', so a test can run the sampler fast."""

    def decode(self, z):
        return z


class _CountScore(torch.nn.Module):
    """Two-class logits from a scene tensor: class 0 grows with the spheres and falls with large metal."""

    num_classes = 2

    def forward(self, z):
        s = vocab.as_slots(z)
        on = s[..., vocab.EXISTS]
        spheres = (on * (s[..., vocab.SHAPE] == 1)).sum(-1)
        large_metal = (on * (s[..., vocab.SIZE] == 0) * (s[..., vocab.MATERIAL] == 1)).sum(-1)
        score = 1.2 * spheres - 1.5 * large_metal
        return torch.stack([score, torch.zeros_like(score)], -1)


def _exact_posterior(sigma):
    """Enumerate every state of two slots at fixed positions 1.3 apart (two large objects overlap;
    large + small do not): flags {10, 01, 11} × (shape 2 × colour 8 × material 2 × size 2)²."""
    import itertools
    states, weights = [], []
    attrs = list(itertools.product(range(2), range(8), range(2), range(2)))
    for flags in ((1, 0), (0, 1), (1, 1)):
        p_flags = 0.25 if sum(flags) == 1 else 0.5          # n uniform on {1, 2}, then the subset uniform
        for a, b in itertools.product(attrs, attrs):
            if flags == (1, 1) and a[3] == 0 and b[3] == 0:  # both large: 1.3 < 0.7 + 0.7 + 0.1
                continue
            z = torch.zeros(2, vocab.FIELDS)
            z[:, vocab.EXISTS] = torch.tensor(flags, dtype=torch.float32)
            z[:, vocab.X] = torch.tensor([-0.65, 0.65])
            for slot, v in enumerate((a, b)):
                z[slot, [vocab.SHAPE, vocab.COLOUR, vocab.MATERIAL, vocab.SIZE]] = torch.tensor(v, dtype=torch.float32)
            states.append(z.reshape(-1))
            weights.append(p_flags)
    z = torch.stack(states)
    p0 = _CountScore()(z).softmax(-1)[:, 0]
    w = torch.tensor(weights, dtype=torch.float64) * torch.exp(-0.5 * ((1 - p0.double()) / sigma) ** 2)
    return z, w / w.sum()


def _summary(z):
    """Index of (object count, spheres, large metal objects) among existing objects."""
    s = vocab.as_slots(z)
    on = s[..., vocab.EXISTS]
    n = on.sum(-1)
    spheres = (on * (s[..., vocab.SHAPE] == 1)).sum(-1)
    lm = (on * (s[..., vocab.SIZE] == 0) * (s[..., vocab.MATERIAL] == 1)).sum(-1)
    return (n * 9 + spheres * 3 + lm).long()


def test_rwm_over_scenes_matches_exact_enumeration():
    """RWM through trex.sample, with the scene proposal (discrete redraws and add/remove flips),
    visits the summary cells with the exact posterior's frequencies; the tolerance is 4 standard
    errors from the spread of per-chain frequencies (chains are independent)."""
    sigma = 0.3
    prior = _Features(num_objects=(1, 2), max_objects=2, shapes=("cube", "sphere"), pos_step=0.0, rot_step=0.0,
                      discrete_rate=0.3, flip_rate=0.6)
    z_exact, w = _exact_posterior(sigma)
    assert len(z_exact) == 3 * 64 ** 2 - 32 ** 2        # the 32² pairs of two large objects overlap
    exact = torch.zeros(27, dtype=torch.float64).index_add_(0, _summary(z_exact), w)
    post = trex.RelaxedPosterior(prior, _CountScore(), "class:0", sigma=sigma, classes=[0, 1])
    chains = 128
    init = prior.sample_prior(chains, torch.Generator().manual_seed(3))
    s = vocab.as_slots(init)
    s[..., vocab.X] = torch.tensor([-0.65, 0.65])
    s[..., vocab.Y] = 0.0
    s[:, :, vocab.SIZE] = torch.tensor([0.0, 1.0])  # a valid start: large + small never overlap
    run = trex.sample(post, trex.samplers.RWM(scale=1.0), num_chains=chains, num_warmup=100, num_samples=300,
                      init=s.reshape(chains, -1), sigma_schedule="constant", replace_stuck=False, progress=False,
                      store_images=False, seed=0)
    cells = _summary(torch.as_tensor(run.latents).reshape(-1, 2 * vocab.FIELDS)).reshape(chains, -1)
    per_chain = torch.nn.functional.one_hot(cells, 27).double().mean(1)        # (chains, 27)
    est, se = per_chain.mean(0), per_chain.std(0) / chains ** 0.5
    seen = exact > 1e-3
    assert seen.sum() >= 6                                                    # a non-trivial posterior
    assert ((est - exact).abs()[seen] < 4 * se[seen] + 2e-3).all(), (est[seen], exact[seen], se[seen])
    assert est[~seen].sum() < 0.01
    # and it differs from the prior, so the likelihood is in play
    prior_only = torch.zeros(27, dtype=torch.float64).index_add_(0, _summary(z_exact), _exact_prior_weights(z_exact))
    assert (prior_only - exact).abs().max() > 0.05


def _exact_prior_weights(z):
    n = vocab.as_slots(z)[..., vocab.EXISTS].sum(-1)
    w = torch.where(n == 1, 0.25, 0.5).double()
    return w / w.sum()


def test_questions_parse_answer_and_wrap():
    z = make_scene([dict(shape="sphere", colour="blue", x=-2, y=0), dict(shape="sphere", colour="blue", material="metal",
                         size="small", x=0, y=0), dict(shape="cube", colour="blue", x=2, y=0),
                    dict(shape="sphere", colour="red", x=0, y=2)], max_objects=5)[None]
    expect = {"spheres": 3, "blue spheres": 2, "how many small metal blue spheres?": 1, "cubes": 1, "cylinders": 0,
              "objects": 4, "large red rubber spheres": 1}
    for text, k in expect.items():
        assert int(Q.answer(z, Q.parse(text))) == k, text
    assert Q.text(Q.parse("blue spheres")) == "how many blue spheres?"
    with pytest.raises(UserError, match="unknown word"):
        Q.parse("how many pyramids?")
    qs = Q.random_questions(z.repeat(50, 1), 4, torch.Generator().manual_seed(0))
    assert qs.shape == (50, 4, 4) and ((qs >= -1) & (qs < 8)).all()

    class Echo(torch.nn.Module):  # logits that say which question was asked
        def forward(self, images, questions):
            return torch.nn.functional.one_hot(questions[:, 0] + 1, 11).float()
    clf = Q.FixedQuestion(Echo(), "cubes")
    assert clf(torch.zeros(3, 3, 8, 8)).argmax(-1).tolist() == [1, 1, 1] and clf.num_classes == 11
