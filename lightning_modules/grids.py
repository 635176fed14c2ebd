"""Fixed-latent sample grids for the generative modules.

Each module registers `fixed_latents(...)` as a buffer (so the latents travel in
the checkpoint and are the same every epoch) and calls `log_sample_grid` at the
end of a training epoch: the grid is written as `samples/epoch_XXX.png` in the
run folder and, with a W&B logger, also logged as the image `samples`.
"""
from pathlib import Path
from typing import Optional

import torch
import torchvision
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger


def fixed_latents(n: int, latent_dim: int, seed: int = 0) -> torch.Tensor:
    """n standard-normal latents from a private generator: independent of the global RNG state."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


def samples_dir(trainer) -> Path:
    """`<run folder>/samples`: the version folder for CSV/TensorBoard loggers, the logger's
    save_dir for others (W&B), else the trainer's default_root_dir."""
    logger = trainer.logger
    base = None
    if isinstance(logger, (CSVLogger, TensorBoardLogger)):
        base = logger.log_dir
    elif logger is not None:
        base = getattr(logger, "save_dir", None)
    if base is None:
        base = trainer.default_root_dir
    return Path(base) / "samples"


def make_grid(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (3, H', W') grid, sqrt(N) images per row."""
    nrow = max(1, int(round(images.shape[0] ** 0.5)))
    return torchvision.utils.make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)


@torch.no_grad()
def decode_in_eval(net: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Decode with BatchNorm/Dropout in eval mode, restoring the previous mode afterwards."""
    was_training = net.training
    net.eval()
    try:
        return net(z)
    finally:
        net.train(was_training)


def log_sample_grid(trainer, images: torch.Tensor, epoch: int, key: str = "samples") -> Optional[Path]:
    """Save the grid PNG (rank zero only) and log it to a W&B logger; returns the PNG path."""
    if not trainer.is_global_zero:
        return None
    grid = make_grid(images)
    path = samples_dir(trainer) / f"epoch_{epoch:03d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    torchvision.utils.save_image(grid, path)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step, caption=[f"epoch {epoch}"])
    return path


def should_log_grid(epoch: int, every_n_epochs: int) -> bool:
    return every_n_epochs > 0 and (epoch + 1) % every_n_epochs == 0
