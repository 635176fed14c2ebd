"""DCGAN over 28x28 grayscale images (paper appendix A): non-saturating BCE loss, 5-d latent."""
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lightning_modules.components.generators import DCGANDiscriminator, DCGANGenerator, sampling_copy
from lightning_modules.grids import decode_in_eval, fixed_latents, log_sample_grid, should_log_grid


class GANModule(pl.LightningModule):
    def __init__(
        self,
        latent_dim: int = 5,
        width: int = 64,
        lr: float = 2e-4,
        lr_g: float | None = None,
        betas: tuple[float, float] = (0.5, 0.999),
        grid_every_n_epochs: int = 1,
        grid_n: int = 64,
        seed: int = 0,
        ema_decay: float | None = None,
    ):
        super().__init__()
        betas = tuple(float(b) for b in betas)  # plain tuple in the checkpoint, even from a Hydra ListConfig
        self.save_hyperparameters()
        # Two optimizers stepped by hand. Note: Lightning counts every optimizer.step() in
        # trainer.global_step, so one batch advances global_step by 2 (matters for max_steps).
        self.automatic_optimization = False
        self.gen = DCGANGenerator(latent_dim=latent_dim, width=width)
        self.disc = DCGANDiscriminator(width=width)
        # Channels-last convolutions: the same model (results differ at float rounding only), 1.6x the steps
        # per second on a 2-core CPU at width 16 (bench/bench_gan_step.py, docs/results/bench_gan_step.md).
        self.gen.to(memory_format=torch.channels_last)
        self.disc.to(memory_format=torch.channels_last)
        self.register_buffer("grid_z", fixed_latents(grid_n, latent_dim, seed))
        # An exponential moving average of the generator's weights (and BatchNorm statistics) is what
        # gets sampled: a GAN's own weights swing from step to step, and so does what it draws (e.g. how
        # often a left-out GAN draws its left-out class). The EMA smooths over the last ~1/(1-decay) steps.
        self.gen_ema = None
        if ema_decay is not None:
            if not 0.0 < ema_decay < 1.0:
                raise ValueError(f"ema_decay must be in (0, 1) or null (no EMA), got {ema_decay}")
            self.gen_ema = AveragedModel(self.gen, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            self.gen_ema.requires_grad_(False)  # updated by hand, never by an optimizer (or DDP's reducer)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.gen(z)

    def _d_stats(self, x: torch.Tensor, fake: torch.Tensor):
        real_logit, fake_logit = self.disc(x), self.disc(fake)
        d_loss = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit)) + \
            F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        return d_loss, torch.sigmoid(real_logit).mean(), torch.sigmoid(fake_logit).mean()

    def training_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = x.contiguous(memory_format=torch.channels_last)
        opt_g, opt_d = self.optimizers()
        z = torch.randn(x.shape[0], self.hparams.latent_dim, device=x.device)
        fake = self.gen(z)

        # discriminator: real -> 1, fake -> 0 (generator output detached)
        self.toggle_optimizer(opt_d)
        d_loss, d_real, d_fake = self._d_stats(x, fake.detach())
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        # generator, non-saturating: maximise log D(G(z))
        self.toggle_optimizer(opt_g)
        fake_logit = self.disc(fake)
        g_loss = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        if self.gen_ema is not None:
            self.gen_ema.update_parameters(self.gen)

        self.log_dict({"train/d_loss": d_loss, "train/g_loss": g_loss, "train/d_real": d_real, "train/d_fake": d_fake},
                      prog_bar=True)

    @torch.no_grad()
    def validation_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        z = torch.randn(x.shape[0], self.hparams.latent_dim, device=x.device)
        d_loss, d_real, d_fake = self._d_stats(x, self.gen(z))
        self.log_dict({"val/d_loss": d_loss, "val/d_real": d_real, "val/d_fake": d_fake})

    def configure_optimizers(self):
        lr, betas = self.hparams.lr, tuple(self.hparams.betas)
        # a faster generator keeps a narrow (quick-profile) GAN from losing to its discriminator
        opt_g = torch.optim.Adam(self.gen.parameters(), lr=self.hparams.lr_g or lr, betas=betas)
        opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=betas)
        return [opt_g, opt_d]

    def sampled_net(self) -> nn.Module:
        """The generator whose weights are sampled: the EMA one when there is one."""
        return self.gen if self.gen_ema is None else self.gen_ema.module

    def on_train_epoch_end(self):
        if should_log_grid(self.current_epoch, self.hparams.grid_every_n_epochs):
            log_sample_grid(self.trainer, decode_in_eval(self.sampled_net(), self.grid_z), self.current_epoch)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["module_class"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def on_load_checkpoint(self, checkpoint):
        # A run trained without EMA and continued with it: the average starts from the saved generator
        # (n_averaged 0, so the first update copies the weights then in training).
        state = checkpoint["state_dict"]
        if self.gen_ema is not None and not any(k.startswith("gen_ema.") for k in state):
            for k, v in list(state.items()):
                if k.startswith("gen."):
                    state["gen_ema.module." + k[len("gen."):]] = v.clone()
            state["gen_ema.n_averaged"] = torch.tensor(0, dtype=torch.long)

    def generator(self) -> nn.Module:
        """The bare generator (z (B, D) -> images (B, 1, 28, 28) in [0, 1]), eval mode, frozen copy
        (of the EMA weights when the module keeps an EMA)."""
        return sampling_copy(self.sampled_net(), self.hparams.latent_dim)
