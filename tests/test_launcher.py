"""Sweeps are Hydra multiruns with a swappable launcher: the basic one (in-process, one job after another),
submitit_local (one process per job, as on a cluster), and submitit_slurm, whose documented overrides
must at least compose against the installed plugin (no cluster here)."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "launcher_app" / "toy.py"


def sweep(*overrides, env=None, timeout=60):
    """Run the toy app as a multirun over x=2,3; returns (the launching process's pid, its output)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, str(TOY), "-m", "x=2,3", *overrides], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return proc.pid, out


def results(folder):
    return {r["x"]: r for r in (json.loads(p.read_text()) for p in Path(folder).glob("x=*/result.json"))}


def test_submitit_local_runs_each_job_in_its_own_process(tmp_path):
    pid, out = sweep("hydra/launcher=submitit_local", f"hydra.sweep.dir={tmp_path}/sweep")
    got = results(tmp_path / "sweep")
    assert sorted(got) == [2, 3], out
    assert [got[x]["square"] for x in (2, 3)] == [4, 9]
    assert {r["launcher"].rsplit(".", 1)[-1] for r in got.values()} == {"LocalLauncher"}
    pids = {r["pid"] for r in got.values()}
    assert len(pids) == 2 and pid not in pids  # submitit, not the basic launcher in the launching process
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*/*_result.pkl"))) == 2
    # docs/launchers.md warns of it: without gpus_per_node, submitit_local hides every GPU from its jobs
    assert {r["cuda_visible_devices"] for r in got.values()} == {""}


def test_submitit_local_gives_every_job_the_same_gpus(tmp_path):
    sweep("hydra/launcher=submitit_local", "hydra.launcher.gpus_per_node=1", f"hydra.sweep.dir={tmp_path}/sweep")
    got = results(tmp_path / "sweep")
    assert sorted(got) == [2, 3] and {r["cuda_visible_devices"] for r in got.values()} == {"0"}


def test_the_basic_launcher_is_the_default(tmp_path):
    pid, _ = sweep(f"hydra.sweep.dir={tmp_path}/sweep")
    got = results(tmp_path / "sweep")
    assert sorted(got) == [2, 3] and {r["pid"] for r in got.values()} == {pid}
    assert {r["launcher"].rsplit(".", 1)[-1] for r in got.values()} == {"BasicLauncher"}


def test_a_timestamped_sweep_dir_is_resolved_once_for_all_jobs(tmp_path):
    """docs/launchers.md relies on it: a job resolving ${now:} itself (or a requeued one) would write elsewhere."""
    sweep("hydra/launcher=submitit_local", env={"TOY_SWEEP_ROOT": str(tmp_path)})
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    got = results(folder)
    assert sorted(got) == [2, 3] and {r["sweep_dir"] for r in got.values()} == {str(folder)}


def documented_slurm_overrides():
    """The hydra/launcher overrides of every `python train.py ... submitit_slurm` command in docs/launchers.md."""
    text = (REPO / "docs" / "launchers.md").read_text().replace("\\\n", " ")
    cmds = [shlex.split(c) for c in re.findall(r"^\s*(python train\.py .*submitit_slurm.*)$", text, re.M)]
    assert cmds, "docs/launchers.md shows no submitit_slurm command"
    return [[o for o in c if o.startswith(("hydra/launcher=", "hydra.launcher."))] for c in cmds]


@pytest.mark.parametrize("overrides", documented_slurm_overrides())
def test_documented_slurm_overrides_compose_against_the_plugin(overrides):
    """The plugin's config is a dataclass: a misspelt or removed field fails here, not on the cluster."""
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "configs")):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    for o in overrides:
        key, value = o.split("=", 1)
        if key.startswith("hydra.launcher.") and not value.startswith(("[", "{")):
            assert str(launcher[key.removeprefix("hydra.launcher.")]) == value
