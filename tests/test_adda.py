"""Domain adaptation: ADDA's step trains the target encoder only; both modules train through train.py."""
from pathlib import Path

import pytest
import torch

from conftest import data_root

pytestmark = pytest.mark.usefixtures("one_thread")


def _params(m):
    return [p.detach().clone() for p in m.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_adda_step_moves_the_target_encoder_only():
    from lightning_modules.adda import adda_step, discriminator
    from lightning_modules.components.classifiers import LeNet
    torch.manual_seed(0)
    source = LeNet().requires_grad_(False)
    target = LeNet()
    target.load_state_dict(source.state_dict())  # ADDA starts from the source encoder
    target.head.requires_grad_(False)
    disc = discriminator(target.num_features)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_t = torch.optim.Adam(target.body.parameters(), lr=2e-4, betas=(0.5, 0.999))
    src0, body0, head0, disc0 = _params(source), _params(target.body), _params(target.head), _params(disc)
    xs, xt = torch.rand(16, 1, 28, 28), 1 - torch.rand(16, 1, 28, 28)
    out = adda_step(source.body, target.body, disc, opt_d, opt_t, xs, xt)
    assert set(out) == {"d_loss", "t_loss", "d_acc"} and torch.isfinite(out["d_loss"])
    assert _same(_params(source), src0)           # the source encoder (and its head) is only read
    assert _same(_params(target.head), head0)     # the shared classifier head stays frozen
    assert not _same(_params(target.body), body0)  # the target encoder moved
    assert not _same(_params(disc), disc0)         # and so did the discriminator
    # the target encoder's step pushes its features towards "source": the fooling loss goes down
    with torch.no_grad():
        before = torch.nn.functional.binary_cross_entropy_with_logits(
            disc(target.body(xt)).squeeze(-1), torch.ones(16))
    for _ in range(5):
        opt_t.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(disc(target.body(xt)).squeeze(-1), torch.ones(16))
        loss.backward()
        opt_t.step()
    assert loss.item() < before.item()


def test_adda_step_on_logits_moves_the_whole_target_copy_only():
    """align="logits" (ADDA's code for LeNet): the adversary reads the networks' outputs."""
    from lightning_modules.adda import adda_step, discriminator
    from lightning_modules.components.classifiers import LeNet
    torch.manual_seed(1)
    source = LeNet().requires_grad_(False)
    target = LeNet()
    target.load_state_dict(source.state_dict())
    disc = discriminator(10)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4)
    opt_t = torch.optim.Adam(target.parameters(), lr=2e-4)
    src0, tgt0 = _params(source), _params(target)
    adda_step(source, target, disc, opt_d, opt_t, torch.rand(8, 1, 28, 28), torch.rand(8, 1, 28, 28))
    assert _same(_params(source), src0) and not _same(_params(target), tgt0)


@pytest.fixture
def inverted_mnist():
    """A source domain registered here, without touching MNIST's code: MNIST with its grey levels inverted."""
    from datamodules import registry
    from datamodules.sources import ensure_dataset
    mnist = registry.get("mnist")

    def load(d, train):
        x, y = mnist.load(d, train)
        return 255 - x, y
    registry.register(registry.DatasetSpec(name="mnist_inv", class_names=mnist.class_names, shape=mnist.shape,
                                           ensure=lambda d: ensure_dataset("mnist", d), load=load,
                                           location=mnist.location))
    yield "mnist_inv"
    registry.unregister("mnist_inv")


def test_baseline_and_adda_train_through_train_py(inverted_mnist, tmp_path):
    import train as train_entry
    from lightning_modules.classifier import load_classifier
    from test_train import tiny
    src = train_entry.train(tiny(tmp_path / "src", "adda/source", f"data.source={inverted_mnist}"))
    assert {"val/acc", "target/acc", "test/acc", "test/target_acc"} <= set(src["metrics"])
    adda = train_entry.train(tiny(tmp_path / "adda", "adda/adda", f"data.source={inverted_mnist}",
                                  f"model.source_checkpoint={src['best_checkpoint']}", "trainer.limit_train_batches=3"))
    assert {"target/acc", "test/target_acc", "train/d_loss"} <= set(adda["metrics"])
    base, classes = load_classifier(src["best_checkpoint"])
    adapted, classes2 = load_classifier(adda["best_checkpoint"])
    assert classes == classes2 == list(range(10)) and adapted.trained_on == base.trained_on == inverted_mnist
    assert not _same(_params(adapted.body), _params(base.body))
    # aligned on the 500-d features, the source head is shared and stays as it was
    feat = train_entry.train(tiny(tmp_path / "feat", "adda/adda", f"data.source={inverted_mnist}", "model.align=features",
                                  f"model.source_checkpoint={src['best_checkpoint']}", "trainer.limit_train_batches=3"))
    adapted = load_classifier(feat["best_checkpoint"])[0]
    assert _same(_params(adapted.head), _params(base.head)) and not _same(_params(adapted.body), _params(base.body))


def test_adda_without_its_source_says_how_to_make_it(tmp_path):
    from trex.errors import UserError
    import train as train_entry
    from test_train import tiny
    with pytest.raises(UserError, match="no source classifier at .*adda/source"):
        train_entry.train(tiny(tmp_path, "adda/adda", f"model.source_checkpoint={tmp_path / 'none.ckpt'}",
                               "data.source=mnist"))
