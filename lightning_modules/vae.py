"""VAE over 28x28 grayscale images (paper appendix A): BCE + KL, 5-d latent."""
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.components.generators import MLPVAE, sampling_copy
from lightning_modules.grids import decode_in_eval, fixed_latents, log_sample_grid, should_log_grid


class VAEModule(pl.LightningModule):
    def __init__(
        self,
        latent_dim: int = 5,
        hidden: int = 400,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        grid_every_n_epochs: int = 1,
        grid_n: int = 64,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.vae = MLPVAE(latent_dim=latent_dim, hidden=hidden)
        self.register_buffer("grid_z", fixed_latents(grid_n, latent_dim, seed))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decoder(z)

    def _loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, mu, logvar = self.vae(x)
        b = x.shape[0]
        # sum over pixels / latent dims, mean over the batch: loss = -ELBO per image
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / b
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / b
        return bce + kl, bce, kl

    def _step(self, batch, stage: str):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        loss, bce, kl = self._loss(x)
        self.log(f"{stage}/loss", loss, prog_bar=True)
        self.log_dict({f"{stage}/elbo": -loss, f"{stage}/bce": bce, f"{stage}/kl": kl})
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def on_train_epoch_end(self):
        if should_log_grid(self.current_epoch, self.hparams.grid_every_n_epochs):
            log_sample_grid(self.trainer, decode_in_eval(self.vae.decoder, self.grid_z), self.current_epoch)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["module_class"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def generator(self) -> nn.Module:
        """The bare decoder (z (B, D) -> images (B, 1, 28, 28) in [0, 1]), eval mode, frozen copy."""
        return sampling_copy(self.vae.decoder, self.hparams.latent_dim)
