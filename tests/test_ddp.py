"""Multi-process data-parallel training on the CPU (gloo), the same path as trainer=ddp on GPUs."""
import json
import subprocess
import sys

import pytest

from conftest import REPO, data_root


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    cmd = [sys.executable, "train.py", "experiment=mnist/classifier", "trainer=ddp", "trainer.devices=2",
           "trainer.accelerator=cpu", "logger=csv", "trainer.max_epochs=1", "data.subset_train=2000",
           "trainer.limit_val_batches=4", "trainer.limit_test_batches=4", "callbacks.progress_bar=false",
           f"paths.data_dir={data_root()}", f"hydra.run.dir={tmp_path}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log
    assert "distributed_backend=gloo" in log
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["metrics"]["test/acc"] > 0.5
