"""Data distributions p(x) = p(g(z)): a prior over latents and a decoder to images."""
from __future__ import annotations

import math

import torch
from torch import nn


class LatentGaussian:
    """z ~ N(0, I) in `latent_dim` dimensions, x = generator(z) (a VAE decoder or a GAN generator).

    The generator is put in eval mode and its parameters frozen: sampling differentiates with
    respect to z only, which saves the parameter gradients.
    """

    def __init__(self, generator: nn.Module, latent_dim: int | None = None):
        latent_dim = latent_dim if latent_dim is not None else getattr(generator, "latent_dim", None)
        if latent_dim is None:
            raise ValueError("latent_dim is needed: pass it or give the generator a `latent_dim` attribute")
        self.generator = generator.eval().requires_grad_(False)
        self.latent_dim = int(latent_dim)
        p = next(generator.parameters(), None)
        self.device = p.device if p is not None else torch.device("cpu")
        self.dtype = p.dtype if p is not None else torch.float32

    @property
    def dim(self) -> int:
        return self.latent_dim

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device, dtype=self.dtype)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z * z).sum(-1) - 0.5 * self.latent_dim * math.log(2 * math.pi)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def propose(self, z: torch.Tensor, scale: torch.Tensor, generator: torch.Generator | None = None):
        """Random-walk move centred on z (symmetric, so the log proposal ratio is 0)."""
        eps = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        return z + scale.reshape(-1, 1) * eps, torch.zeros(z.shape[0], device=z.device, dtype=z.dtype)
