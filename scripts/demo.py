"""make demo: MNIST classifier + VAE from the quick zoo (trained on first use), then three targets."""
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def main():
    os.environ.setdefault("WANDB_MODE", "offline")
    start = time.time()
    subprocess.check_call([PY, "-m", "lightning_modules.zoo", "--dataset", "mnist", "--profile", "quick",
                           "--only", "classifier,vae"], cwd=ROOT)
    trained = time.time()
    out = ROOT / "runs" / "demo"
    subprocess.check_call([PY, "sample.py", "experiment=mnist/demo", f"hydra.run.dir={out}"], cwd=ROOT)
    print(f"\nmodels ready in {trained - start:.0f} s, sampling took {time.time() - trained:.0f} s")
    print(f"pictures: {out}/<target>/grid.png and confidence.png; table: {out}/diagnostics.md")


if __name__ == "__main__":
    main()
