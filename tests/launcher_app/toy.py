"""A Hydra app small enough to sweep in seconds: each job writes what it saw into its own output folder.
tests/test_launcher.py runs it as a multirun through hydra/launcher=submitit_local."""
import json
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path=".", config_name="toy")
def main(cfg) -> int:
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    # the launcher's class and the process id show which launcher really ran the job, and where
    record = {"x": cfg.x, "square": cfg.x ** 2, "job_num": hc.job.num, "pid": os.getpid(),
              "launcher": hc.launcher._target_, "sweep_dir": hc.sweep.dir,
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    (out / "result.json").write_text(json.dumps(record))
    return cfg.x ** 2


if __name__ == "__main__":
    main()
