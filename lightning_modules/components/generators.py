"""The paper's data-distribution networks (appendix A, Table 6) as plain nn.Modules.

A generator maps latents z (B, latent_dim) to images (B, 1, 28, 28) in [0, 1] and
carries a `latent_dim` attribute; that is all the sampler (`trex`) relies on.
"""
import copy
import math

import torch
from torch import nn
import torch.nn.functional as F


class MLPDecoder(nn.Module):
    """z -> hidden (ReLU) -> 784 (sigmoid) -> (B, 1, 28, 28)."""

    def __init__(self, latent_dim: int = 5, hidden: int = 400, image_shape=(1, 28, 28)):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        n_pixels = math.prod(self.image_shape)
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_pixels))

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        # Kept separate so the VAE loss can use the numerically stable BCE-with-logits.
        return self.net(z).view(z.shape[0], *self.image_shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))


class MLPVAE(nn.Module):
    """Encoder 784 -> hidden (ReLU) -> (mu, logvar); decoder `MLPDecoder`."""

    def __init__(self, latent_dim: int = 5, hidden: int = 400, image_shape=(1, 28, 28)):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        n_pixels = math.prod(self.image_shape)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(n_pixels, hidden), nn.ReLU())
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        self.decoder = MLPDecoder(latent_dim, hidden, self.image_shape)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (reconstruction logits, mu, logvar); z is drawn by reparameterisation."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder.logits(z), mu, logvar


class DCGANGenerator(nn.Module):
    """z -> 1x1 -> ConvT 8w (4, s1) -> 4w -> 2w -> w (4, s2, p1) -> ConvT 1 (1x1) sigmoid -> crop 28.

    Spatial sizes 1 -> 4 -> 8 -> 16 -> 32; the 32x32 output is center-cropped to 28x28.
    width=64 gives the paper's 512-256-128-64 channels.
    """

    def __init__(self, latent_dim: int = 5, width: int = 64, out_channels: int = 1, out_size: int = 28,
                 out_bias: float = -2.0):
        super().__init__()
        self.latent_dim = latent_dim
        self.out_size = out_size
        w = width

        def up(cin, cout, stride, pad):
            return [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.net = nn.Sequential(
            *up(latent_dim, 8 * w, 1, 0),  # 4x4
            *up(8 * w, 4 * w, 2, 1),  # 8x8
            *up(4 * w, 2 * w, 2, 1),  # 16x16
            *up(2 * w, w, 2, 1),  # 32x32
            nn.ConvTranspose2d(w, out_channels, 1),
            nn.Sigmoid(),
        )
        dcgan_init_(self)
        # The output starts near the mostly-black background (logit -2 ~ pixel 0.12), not grey 0.5:
        # the 1x1 output layer has only width + 1 parameters per pixel, and from grey Adam darkens
        # the background so slowly that the discriminator wins first and the GAN never learns
        # (we saw d_loss -> 0.0003 with grey noise as samples).
        nn.init.constant_(self.net[-2].bias, out_bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(z.view(z.shape[0], self.latent_dim, 1, 1))
        off = (x.shape[-1] - self.out_size) // 2
        return x[..., off:off + self.out_size, off:off + self.out_size]


class DCGANDiscriminator(nn.Module):
    """Mirror of the generator: pad 28 -> 32, Conv w -> 2w -> 4w (4, s2, p1; 32 -> 16 -> 8 -> 4),
    LeakyReLU(0.2) (BN from the second layer on, as in DCGAN), Conv 1 (4x4) -> one logit per image."""

    def __init__(self, width: int = 64, in_channels: int = 1, in_size: int = 28):
        super().__init__()
        self.pad = (32 - in_size) // 2
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 16x16
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2, True),  # 8x8
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2, True),  # 4x4
            nn.Conv2d(4 * w, 1, 4, 1, 0),  # 1x1
        )
        dcgan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad,) * 4)
        return self.net(x).view(x.shape[0])


def dcgan_init_(module: nn.Module) -> nn.Module:
    """DCGAN weight init: conv weights N(0, 0.02), BN weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def sampling_copy(net: nn.Module, latent_dim: int) -> nn.Module:
    """A copy for sampling: eval mode, parameters frozen (gradients still flow to z), `latent_dim` set."""
    g = copy.deepcopy(net).eval()
    g.requires_grad_(False)
    g.latent_dim = latent_dim
    return g
