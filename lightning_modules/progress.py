"""Training progress that suits a log: Lightning's bar redraws with carriage returns, which a log
captured with `tee` turns into one enormous line. Off a terminal we print one line per epoch."""
import time

import pytorch_lightning as pl
import torch

from trex.progress import on_terminal  # noqa: F401  (train.py asks it too)


class EpochLines(pl.Callback):
    """One line per finished epoch with its time and logged numbers (the bar's place off a terminal)."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.time()

    def on_train_epoch_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        nums = {k: float(v) for k, v in trainer.callback_metrics.items()
                if torch.is_tensor(v) and v.numel() == 1 and not k.endswith("_step")}
        shown = "  ".join(f"{k}={v:.4g}" for k, v in sorted(nums.items()))
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {time.time() - self.start:.0f} s  {shown}",
              flush=True)
