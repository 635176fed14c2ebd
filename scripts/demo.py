"""make demo: MNIST classifier, VAE and LeNet typicality judge from the quick zoo (trained on first
use), then three targets. `--train-seed N` trains the models with another seed in their own zoo
folder (zoo-seed<N>), which is how the README's demo table was checked for two training seeds."""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--train-seed", type=int, default=0, help="seed for training the demo's models")
    a = ap.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "offline")
    start = time.time()
    zoo = os.environ.get("ZOO_DIR", "zoo") + ("" if a.train_seed == 0 else f"-seed{a.train_seed}")
    subprocess.check_call([PY, "-m", "lightning_modules.zoo", "--dataset", "mnist", "--profile", "quick",
                           "--root", zoo, "--only", "classifier,lenet,vae", f"seed={a.train_seed}"], cwd=ROOT)
    trained = time.time()
    out = ROOT / "runs" / ("demo" if a.train_seed == 0 else f"demo-seed{a.train_seed}")
    rc = subprocess.call([PY, "sample.py", "experiment=mnist/demo", f"hydra.run.dir={out}", f"paths.zoo_dir={zoo}"],
                         cwd=ROOT)
    if rc:
        sys.exit(rc)
    print(f"\nmodels ready in {trained - start:.0f} s, sampling took {time.time() - trained:.0f} s")
    print((out / "diagnostics.md").read_text())
    print(f"pictures: {out}/<target>/grid.png (red frame: atypical draw), confidence.png, typicality.png; "
          f"table: {out}/diagnostics.md")


if __name__ == "__main__":
    main()
