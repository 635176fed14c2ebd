"""What the entry points share around Hydra: a check of the command line before Hydra makes a run
folder (unknown keys with the closest valid one, unwritable folders), one-line user errors, and the
removal of a run folder a failed start left empty."""
from __future__ import annotations

import difflib
import os
import re
import shutil
import sys
from pathlib import Path

from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _run_name(targets, target):
    from trex.targets import run_name
    try:
        return run_name(targets, target)
    except ValueError:  # a bad target: the run itself says what is wrong
        return "bad-target"


def _pickle_torch_classes_as_an_import() -> None:
    """Launchers that start jobs in other processes (submitit) pickle the task function with cloudpickle:
    an entry point's own functions by value, with the torch submodules their attribute names match
    (`models.classes` -> torch.classes). torch.classes is a ModuleType subclass that pickle has no rule
    for ("cannot pickle '_Classes' object"), so give it one: the import it is."""
    import copyreg
    import importlib

    import torch
    copyreg.pickle(type(torch.classes), lambda m: (importlib.import_module, (m.__name__,)))


_pickle_torch_classes_as_an_import()

if not OmegaConf.has_resolver("run_name"):
    OmegaConf.register_new_resolver("run_name", _run_name)


def fail(error, code: int = 2):
    """Print a user error as 'error: ...' on stderr, with no traceback, and exit."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    sys.exit(code)


def _keys(cfg, prefix="") -> list[str]:
    """Every dotted key of a config, without resolving interpolations."""
    tree = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    out = []
    for k, v in tree.items():
        out.append(f"{prefix}{k}")
        if isinstance(v, dict):
            out += _keys(v, f"{prefix}{k}.")
    return out


# Hydra's own flags, and those of them that take a value
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp",
                     "--config-dir", "-cd", "--info", "-i", "--experimental-rerun"}


def _overrides(argv: list[str]):
    """The plain `key=value` overrides of a command line, or None when it asks Hydra for something
    else (a multirun sweep, --help, --cfg, another config), which Hydra then handles itself."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("-m", "--multirun", "-h", "--help", "--hydra-help", "--version", "--shell-completion", "-sc"):
            return None
        elif a.startswith("-"):
            if a.split("=")[0] in ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd"):
                return None  # another config than the one we would check
            skip = a in _FLAGS_WITH_VALUE
        else:
            out.append(a)
    return out


def precheck(config_name: str, argv: list[str]) -> None:
    """Compose the config as Hydra will; a mistake ends here in one message: an unknown key gets the
    closest valid key, a bad value or group option Hydra's own explanation, an unwritable run folder
    the folder's name. Nothing is created."""
    overrides = _overrides(argv)
    if overrides is None:
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS), job_name=config_name):
        try:
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
        except (HydraException, OmegaConfBaseException) as e:
            msg = str(e).strip()
            m = re.search(r"Could not override '([^']+)'", msg) or re.search(r"Key '([^']+)' is not in struct", msg)
            if m:
                try:  # the keys there are without this override (another bad one leaves no suggestion)
                    base = compose(config_name, overrides=[o for o in overrides if not o.startswith(m.group(1) + "=")])
                    near = difflib.get_close_matches(m.group(1), _keys(base), n=1, cutoff=0.6)
                except (HydraException, OmegaConfBaseException):
                    near = []
                hint = f"; did you mean {near[0]}?" if near else f"; `python {config_name}.py --cfg job` lists them"
                fail(f"unknown config key {m.group(1)!r}{hint}")
            msg = msg.split("Config search path")[0]  # Hydra's list of folders says nothing a user needs
            fail(" ".join(line.strip() for line in msg.splitlines()[:12] if line.strip()))
    run_dir = Path(OmegaConf.select(cfg, "hydra.run.dir", default="") or ".")
    existing = next(p for p in [run_dir, *run_dir.absolute().parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        fail(f"cannot write the run folder {run_dir}: {existing} is not a writable folder. Choose another "
             f"with hydra.run.dir=... (or set RUNS_DIR)")


class JobFailed(RuntimeError):
    """A multirun job that stopped on a user error (its folder's error.txt holds the whole message)."""


def job_failed(error, folder: Path, runs_dir=None):
    """End a run on a user error in one line. In a multirun the job's folder keeps the message
    (error.txt, which the sweep's report shows) and the error is raised instead of exiting, so Hydra
    runs the sweep's other jobs and fails at the end; a later successful run removes the file."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.txt").write_text(f"{error}\n")
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise JobFailed(f"{folder}: {str(error).splitlines()[0]}") from None
    remove_if_unused(folder, runs_dir)
    fail(error)


def remove_if_unused(folder: Path, runs_dir=None) -> None:
    """Remove a run folder that holds nothing but what Hydra writes at start-up, and the parents it
    left empty inside `runs_dir`, so a run that failed before it began leaves nothing behind."""
    if not folder.is_dir():
        return
    if any(p.name not in (".hydra", f"{_job()}.log") for p in folder.iterdir()):
        return  # it holds results or resume state: keep it
    shutil.rmtree(folder, ignore_errors=True)
    stop = Path(runs_dir).absolute() if runs_dir else None
    for parent in folder.absolute().parents:
        if stop is None or parent == stop or stop not in parent.parents:
            break  # never above the runs folder: an empty folder there is the user's
        try:
            parent.rmdir()  # only while empty
        except OSError:
            break


def _job() -> str:
    return Path(sys.argv[0]).stem
