"""The counting network's targets and training step (through train.py), the fixed-question
wrapper, and the explanation tools on a classifier whose answer is known to hinge on one object."""
import math

import pytest
import torch

from conftest import compose_cfg
from lightning_modules.components.counting import SceneCounter, cell_targets
from trex.scenes import Renderer, ScenePrior, make_scene, vocab
from trex.scenes import experiment
from trex.scenes.questions import NUM_ANSWERS, FixedQuestion

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cell_targets_count_every_object_once():
    prior = ScenePrior(num_objects=(3, 6))
    z = prior.sample_prior(20, torch.Generator().manual_seed(0))
    cam = prior.renderer.camera
    density, (ib, cell, w, labels) = cell_targets(z, cam)
    n = vocab.as_slots(z)[..., vocab.EXISTS].sum(-1)
    assert density.shape == (20, 32, 32)
    assert torch.allclose(density.sum((1, 2)), n, atol=1e-5)          # one unit of density per object
    assert torch.allclose(torch.zeros(20).index_add_(0, ib, w), n, atol=1e-5)
    # the heaviest cell of a lone object is the one its projected centre falls in
    one = make_scene([dict(shape="cube", colour="red", x=1.2, y=-0.7)])[None]
    d, _ = cell_targets(one, cam)
    from trex.scenes.render import object_centres
    row, col = cam.project(object_centres(vocab.as_slots(one))[0][0, 0]).tolist()
    assert divmod(int(d[0].argmax()), 32) == (int((row + 0.5) // 4), int((col + 0.5) // 4))


def test_counter_answers_any_question_and_wraps_as_a_classifier():
    net = SceneCounter(width=16).eval()
    img = Renderer()(ScenePrior().sample_prior(3, torch.Generator().manual_seed(0)))
    q = torch.tensor([[1, -1, -1, -1], [1, 2, -1, -1], [-1, -1, -1, -1]])
    with torch.no_grad():
        logits = net(img, q)
        density, _ = net.maps(img)
        everything = net.count(img, q)[2]
    assert logits.shape == (3, NUM_ANSWERS)
    assert torch.allclose(everything, density[2].sum())                # "how many objects": no filter
    clf = FixedQuestion(net, "blue spheres")
    assert clf(img).shape == (3, NUM_ANSWERS)
    with pytest.raises(ValueError, match="multiple of 8"):
        net.maps(torch.zeros(1, 3, 100, 100))


def test_training_step_through_train_py(tmp_path):
    """train.py with the scenes experiment: data rendered and cached, a few steps, held-out accuracy logged."""
    import train as train_entry
    cfg = compose_cfg("train", ["experiment=scenes/counting", "logger=csv", "trainer.max_epochs=2",
                                "data.num_train=128", "data.num_val=32", "data.num_test=32", "data.batch_size=32",
                                "callbacks.progress_bar=false", "trainer.accelerator=cpu", "model.width=16",
                                f"paths.data_dir={tmp_path / 'data'}"], tmp_path / "run")
    cfg.paths.data_dir = str(tmp_path / "data")
    out = train_entry.train(cfg)
    m = out["metrics"]
    assert math.isfinite(m["train/loss_epoch"]) and 0 <= m["test/acc"] <= 1
    assert len(list((tmp_path / "data" / "scenes").glob("*.pt"))) == 3
    from lightning_modules.counting import load_counter
    net = load_counter(out["best_checkpoint"])
    assert isinstance(net, SceneCounter) and not net.training
    # and sample_scenes.py runs on it: two targets, a few RWM steps, the explanation of any confident failure
    import sample_scenes
    scfg = compose_cfg("sample_scenes", [f"counter={out['best_checkpoint']}", "targets=[five_spheres,failure_one_cube]",
                                         "num_chains=2", "num_warmup=4", "num_samples=3", "init_candidates=2",
                                         "progress=false", "smoothgrad_samples=2"], tmp_path / "sample")
    res = sample_scenes.run(scfg)
    assert [r["name"] for r in res["summary"]] == ["five_spheres", "failure_one_cube"]
    assert all(r["draws"] == 6 and 0 <= r["mean"] <= 1 for r in res["summary"])
    assert (tmp_path / "sample" / "scenes.png").exists() and "failure_one_cube" in res["explanations"]


class _RedDetector(torch.nn.Module):
    """p(answer 1) rises with the number of strongly red pixels, and only red pixels have a gradient."""

    def forward(self, images, questions):
        red = torch.relu(images[:, 0] - images[:, 1] - images[:, 2] - 0.05).sum((1, 2))
        logit = 0.01 * (red - 50.0)  # soft enough that p is not saturated and has a gradient
        logits = torch.full((len(images), NUM_ANSWERS), -20.0)
        logits[:, 1] = logit
        logits[:, 0] = 0.0
        return logits


def test_saliency_and_removal_find_the_object_the_answer_hinges_on():
    t = experiment.SceneTarget("t", "cubes", 1, "failure", exclude=("cube",))
    prior = t.prior(num_objects=4)
    clf = FixedQuestion(_RedDetector(), t.question)
    scenes = [[dict(shape="sphere", colour=c, x=x, y=y) for c, (x, y) in zip(cols, [(-2, 0), (0, 1.5), (2, 0), (0, -2)])]
              for cols in (["blue", "red", "green", "gray"], ["yellow", "gray", "cyan", "red"])]
    z = torch.stack([make_scene(s) for s in scenes])
    e = experiment.explain_draws(clf, prior, z, t, samples=4, stdev=0.02)
    assert e["salient"].tolist() == [1, 3] and e["decisive"].tolist() == [1, 3] and e["agree"].all()
    assert e["salient_mean"].tolist() == [1, 3]
    assert (e["without"].gather(1, e["decisive"][:, None])[:, 0] < e["full"]).all()
    assert e["salient_flips"].all() and e["saliency"].shape == (2, 128, 128)
