"""Generators (VAE, GAN), their Lightning modules, fixed-latent grids, FID and checkpoint loading.

Tiny widths and synthetic tensors: these are shape/step/plumbing tests, not quality tests.
"""
import glob
import os

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.components.generators import DCGANDiscriminator, DCGANGenerator, MLPVAE
from lightning_modules.fid import ClassifierFeatures, compute_fid, fid_between, fid_report, inception_fid
from lightning_modules.gan import GANModule
from lightning_modules.grids import fixed_latents, samples_dir
from lightning_modules.loading import load_generator
from lightning_modules.vae import VAEModule

TINY_VAE = dict(latent_dim=5, hidden=16, grid_n=16)
TINY_GAN = dict(latent_dim=5, width=4, grid_n=16)


def loader(n=16, batch_size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def trainer(tmp_path, **kw):
    args = dict(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                default_root_dir=str(tmp_path))
    args.update(kw)
    return pl.Trainer(**args)


class EpochBuffers(pl.Callback):
    """Records the grid latents at every epoch end."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.seen.append(pl_module.grid_z.detach().clone())


# ---------------------------------------------------------------- networks

@pytest.mark.parametrize("make", [
    lambda: MLPVAE(latent_dim=5, hidden=400).decoder,
    lambda: DCGANGenerator(latent_dim=5, width=64),  # the paper's 512-256-128-64
    lambda: DCGANGenerator(latent_dim=5, width=4),
])
def test_generator_shapes_and_range(make):
    g = make().eval()
    assert g.latent_dim == 5
    x = g(torch.randn(3, 5) * 3)
    assert x.shape == (3, 1, 28, 28)
    assert x.min() >= 0 and x.max() <= 1


def test_vae_and_discriminator_shapes():
    vae = MLPVAE(latent_dim=5, hidden=32)
    x = torch.rand(4, 1, 28, 28)
    logits, mu, logvar = vae(x)
    assert logits.shape == x.shape and mu.shape == (4, 5) and logvar.shape == (4, 5)
    assert DCGANDiscriminator(width=4)(x).shape == (4,)


def test_dcgan_generator_crops_a_32x32_canvas():
    g = DCGANGenerator(latent_dim=5, width=4).eval()
    full = g.net(torch.randn(2, 5, 1, 1))
    assert full.shape[-2:] == (32, 32)
    z = torch.randn(2, 5)
    assert torch.equal(g(z), g.net(z.view(2, 5, 1, 1))[..., 2:30, 2:30])


# ---------------------------------------------------------------- training steps through a Trainer

def test_vae_steps_and_logs(tmp_path):
    model = VAEModule(**TINY_VAE)
    before = [p.detach().clone() for p in model.parameters()]
    t = trainer(tmp_path, max_steps=2, limit_val_batches=1)
    t.fit(model, loader(), loader(seed=1))
    assert t.global_step == 2
    for k in ("train/loss", "train/elbo", "val/elbo", "val/loss"):
        assert k in t.callback_metrics, k
    assert torch.isclose(t.callback_metrics["val/elbo"], -t.callback_metrics["val/loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_gan_steps_logs_and_updates_both_nets(tmp_path):
    model = GANModule(**TINY_GAN)
    g0 = [p.detach().clone() for p in model.gen.parameters()]
    d0 = [p.detach().clone() for p in model.disc.parameters()]
    t = trainer(tmp_path, limit_train_batches=2, limit_val_batches=1)
    t.fit(model, loader(), loader(seed=1))
    # manual optimization: each of the two optimizer steps per batch counts in global_step
    assert t.global_step == 4
    for k in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "val/d_real"):
        assert k in t.callback_metrics, k
    assert 0 <= t.callback_metrics["train/d_real"] <= 1
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.gen.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.disc.parameters()))


def test_gan_resumes_from_checkpoint(tmp_path):
    model = GANModule(**TINY_GAN)
    t = trainer(tmp_path, limit_train_batches=2)
    t.fit(model, loader())
    ckpt = tmp_path / "gan.ckpt"
    t.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert len(state["optimizer_states"]) == 2
    model2 = GANModule(**TINY_GAN)
    t2 = trainer(tmp_path, limit_train_batches=2, max_epochs=2)
    t2.fit(model2, loader(), ckpt_path=str(ckpt))
    assert t2.current_epoch == 2 and t2.global_step == 8


class EmaTrace(pl.Callback):
    """Records (generator params, EMA params) after every training batch."""

    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, *args):
        flat = lambda net: torch.cat([p.detach().flatten() for p in net.parameters()]).clone()
        self.rows.append((flat(pl_module.gen), flat(pl_module.gen_ema.module)))


def test_gan_ema_follows_the_recurrence_and_is_what_gets_sampled(tmp_path):
    decay = 0.5  # large steps, so the average is far from the last weights
    model = GANModule(**TINY_GAN, ema_decay=decay)
    trace = EmaTrace()
    t = trainer(tmp_path, limit_train_batches=3, callbacks=[trace])
    t.fit(model, loader(n=24))
    (g1, e1), *rest = trace.rows
    assert torch.equal(e1, g1)  # the first update copies the weights
    prev = e1
    for g, e in rest:
        assert torch.allclose(e, decay * prev + (1 - decay) * g, atol=1e-6)
        assert not torch.allclose(e, g)
        prev = e
    assert not any(p.requires_grad for p in model.gen_ema.parameters())
    z = torch.randn(4, 5)
    with torch.no_grad():
        sampled = model.generator()(z)
        assert torch.equal(sampled, model.gen_ema.module.eval()(z))
        assert not torch.allclose(sampled, model.gen.eval()(z))


def test_gan_without_ema_continues_with_ema_from_its_weights(tmp_path):
    model = GANModule(**TINY_GAN)  # trained without an average
    t = trainer(tmp_path, limit_train_batches=2)
    t.fit(model, loader())
    ckpt = tmp_path / "plain.ckpt"
    t.save_checkpoint(ckpt)
    model2 = GANModule(**TINY_GAN, ema_decay=0.9)
    trace = EmaTrace()
    t2 = trainer(tmp_path, limit_train_batches=2, max_epochs=2, callbacks=[trace])
    t2.fit(model2, loader(), ckpt_path=str(ckpt))
    assert t2.current_epoch == 2
    g1, e1 = trace.rows[0]
    assert torch.equal(e1, g1)  # the average starts at the weights being trained, not at a fresh init
    path = tmp_path / "ema.ckpt"
    t2.save_checkpoint(path)
    z = torch.randn(3, 5)
    assert torch.equal(load_generator(path)(z), model2.generator()(z))


def test_gan_ema_decay_checked():
    with pytest.raises(ValueError, match="ema_decay"):
        GANModule(**TINY_GAN, ema_decay=1.0)


# ---------------------------------------------------------------- fixed-latent grids

@pytest.mark.parametrize("cls,kw", [(VAEModule, TINY_VAE), (GANModule, TINY_GAN)])
def test_grid_latents_fixed_and_png_per_epoch(tmp_path, cls, kw):
    model = cls(**kw, seed=3)
    rec = EpochBuffers()
    logger = CSVLogger(str(tmp_path), name="run")
    t = trainer(tmp_path, max_epochs=2, limit_train_batches=1, logger=logger, callbacks=[rec])
    t.fit(model, loader())
    assert len(rec.seen) == 2 and torch.equal(rec.seen[0], rec.seen[1])
    assert torch.equal(rec.seen[0], fixed_latents(16, 5, seed=3))
    assert "grid_z" in model.state_dict()  # travels in the checkpoint
    d = samples_dir(t)
    assert d == tmp_path / "run" / "version_0" / "samples"
    assert sorted(p.name for p in d.glob("*.png")) == ["epoch_000.png", "epoch_001.png"]


def test_grid_every_n_epochs(tmp_path):
    model = VAEModule(**TINY_VAE, grid_every_n_epochs=2)
    t = trainer(tmp_path, max_epochs=3, limit_train_batches=1)  # no logger: default_root_dir
    t.fit(model, loader())
    assert [p.name for p in (tmp_path / "samples").glob("*.png")] == ["epoch_001.png"]


def test_grid_logged_to_wandb_offline(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from pytorch_lightning.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logger = WandbLogger(offline=True, save_dir=str(tmp_path), project="test-generators")
    try:
        t = trainer(tmp_path, max_epochs=1, limit_train_batches=1, logger=logger)
        t.fit(VAEModule(**TINY_VAE), loader())
    finally:
        wandb.finish()
    assert (tmp_path / "samples" / "epoch_000.png").is_file()
    media = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "files" / "media" / "images" / "*.png"))
    assert len(media) == 1 and os.path.basename(media[0]).startswith("samples")


# ---------------------------------------------------------------- FID

class TinyFeatures(nn.Module):
    """A PaperCNN-shaped stand-in: .features(x) and .num_features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.num_features = 8
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AvgPool2d(6), nn.Flatten(),
                                  nn.Linear(4 * 4 * 4, 8), nn.Tanh(), nn.Dropout(0.5))

    def features(self, x):
        return self.body(x)


def blobs(n, seed):
    """Smooth 'digit-like' images: one Gaussian blob at a random position."""
    g = torch.Generator().manual_seed(seed)
    c = 8 + 12 * torch.rand(n, 2, 1, 1, generator=g)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    return torch.exp(-((yy - c[:, :1]) ** 2 + (xx - c[:, 1:]) ** 2) / 18.0)  # (n, 1, 28, 28)


def test_fid_small_for_same_distribution_large_for_noise():
    feats = ClassifierFeatures(TinyFeatures())
    feats.train()  # must stay in eval mode: dropout would make FID(real, real) nonzero
    assert not feats.training
    real, real2 = blobs(400, 0), blobs(400, 1)
    noise = torch.rand(400, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    same = fid_between(real, real, feats, batch_size=128)
    other_draw = fid_between(real, real2, feats, batch_size=128)
    far = fid_between(real, noise, feats, batch_size=128)
    # scale-free checks (a random tiny net has small features): same set ~ 0, noise >> resampling
    assert abs(same) < 1e-3 * far
    assert far > 50 * other_draw > 0


def test_compute_fid_with_generator_is_seeded():
    g = DCGANGenerator(latent_dim=5, width=4)
    real = blobs(200, 0)
    a = compute_fid(g, real, TinyFeatures(), n_fake=200, batch_size=64, seed=5)
    b = compute_fid(g, real, TinyFeatures(), n_fake=200, batch_size=64, seed=5)
    assert a == b and a > 0 and g.training  # generator's mode restored


def test_inception_fid_offline_and_report(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: never downloads
    monkeypatch.delenv("TREX_INCEPTION_WEIGHTS", raising=False)
    g = MLPVAE(hidden=16).decoder
    real = blobs(50, 0)
    value, reason = inception_fid(g, real)
    assert value is None and reason
    rep = fid_report(g, real, TinyFeatures(), dataset="blobs", batch_size=25)
    assert set(rep) >= {"fid_classifier", "features", "fid_inception", "inception_note"}
    assert rep["fid_inception"] is None and rep["inception_note"] == reason
    assert rep["features"] == "TinyFeatures penultimate (8-d), trained on blobs"
    assert rep["fid_classifier"] > 0


# ---------------------------------------------------------------- checkpoint -> bare generator

@pytest.mark.parametrize("cls,kw", [(VAEModule, TINY_VAE), (GANModule, TINY_GAN)])
def test_load_generator_round_trip(tmp_path, cls, kw):
    model = cls(**kw)
    t = trainer(tmp_path, max_steps=2)
    t.fit(model, loader())
    path = tmp_path / "m.ckpt"
    t.save_checkpoint(path)
    g = load_generator(path)
    ref = model.generator()
    assert g.latent_dim == 5 and not g.training
    assert not any(p.requires_grad for p in g.parameters())
    z = torch.randn(6, 5, requires_grad=True)
    out = g(z)
    assert torch.equal(out, ref(z))
    out.sum().backward()  # gradients reach the latent (what the sampler needs)
    assert z.grad is not None and z.grad.abs().sum() > 0
    net = model.vae.decoder if cls is VAEModule else model.gen
    assert ref is not net and all(p.requires_grad for p in net.parameters())  # a copy; the module is untouched


def test_generator_report_left_out_share_beside_its_real_floor(monkeypatch, tmp_path):
    """Left-out share among generated images, and the same share among real held-out images
    of the training classes (what the classifier alone contributes)."""
    from types import SimpleNamespace

    from lightning_modules import evaluate

    class Bright(nn.Module):  # "3" for bright images, "4" otherwise
        def forward(self, x):
            bright = x.flatten(1).mean(1) > 0.5
            return nn.functional.one_hot(torch.where(bright, 3, 4), 10).float() * 10

    class Gen(nn.Module):
        latent_dim = 1

        def forward(self, z):  # a third of the images bright
            return (z[:, :, None, None] > 0.43).float().expand(-1, 1, 4, 4)

    classes = list(range(10))
    monkeypatch.setattr(evaluate, "load_classifier", lambda path: (Bright(), classes))
    monkeypatch.setattr(evaluate, "fid_report", lambda *a, **k: {"fid_classifier": 1.0})
    real = torch.zeros(100, 1, 4, 4)
    real[:10] = 1.0  # 10 % of the real images of class 4 look like a 3
    dm = SimpleNamespace(setup=lambda stage: None, test_set=SimpleNamespace(tensors=[real]),
                         classes=[4], dataset="blobs")
    ck = tmp_path / "clf.ckpt"
    ck.write_bytes(b"x")
    rep = evaluate.generator_report(Gen(), dm, str(ck))
    assert rep["real_share_outside_training_classes"] == 0.1
    assert abs(rep["share_outside_training_classes"] - 0.334) < 0.02
    assert rep["class_shares"][3] == rep["share_outside_training_classes"]
    assert rep["judge"] == evaluate.classifier_stamp(ck) and len(rep["judge"]["sha256"]) == 16
