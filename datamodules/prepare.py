"""Fetch (or generate) registered datasets into the data folder: ``python -m datamodules.prepare mnist fashion --data-dir data``."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from . import registry
from .sources import DataDirError, DataUnavailableError, ensure_dataset, raw_dir


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m datamodules.prepare", description=__doc__)
    p.add_argument("datasets", nargs="+", help="registered datasets: " + ", ".join(registry.names()))
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "data"),
                   help="data folder (default: $DATA_DIR or ./data)")
    p.add_argument("-q", "--quiet", action="store_true", help="only print the result lines")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="  %(message)s", stream=sys.stderr)
    logging.getLogger("datamodules.sources").setLevel(logging.WARNING if args.quiet else logging.INFO)
    for name in args.datasets:
        try:
            root = ensure_dataset(name, args.data_dir)
        except (DataUnavailableError, DataDirError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"{name}: ready in {raw_dir(name, root)} (torchvision root={root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
