"""make reproduce's path: the report from a sweep folder (fast, on made-up sample sets), and the
multirun itself on tiny real models, twice, the second call skipping what the first finished (slow)."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from trex.results import SampleSet

sys.path.insert(0, str(REPO))
from scripts import report  # noqa: E402


def made_up(target, ideal, seed=0, chains=4, draws=25, sampler_seed=0):
    """A SampleSet whose draws sit near `ideal`, with the diagnostics sample.py would have stored."""
    rng = np.random.default_rng(seed)
    probs = np.clip(ideal + rng.normal(0, 0.02, (chains, draws, 10)), 0, 1)
    probs /= probs.sum(-1, keepdims=True)
    diag = {"near_target_0.1": 1.0, "near_target_0.05": 0.9, "accept_rate": 0.7, "divergences": 0, "rhat_max": 1.02,
            "ess_bulk_min": 80.0, "confidence_rhat_max": 1.01, "confidence_ess_bulk_min": 90.0}
    return SampleSet(latents=rng.normal(size=(chains, draws, 5)), probs=probs, logdensity=np.zeros((chains, draws)),
                     accepted=np.ones((chains, draws), bool), divergent=np.zeros((chains, draws), bool),
                     step_size=np.ones(chains), ideal=ideal,
                     images=rng.integers(0, 255, (chains, draws, 1, 28, 28), dtype=np.uint8),
                     meta={"target": target, "classes": list(range(10)), "sampler": "hmc", "seed": sampler_seed,
                           "wall_time_s": 12.5, "diagnostics": diag})


def test_the_report_shows_what_ran_and_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DIR", str(tmp_path / "empty-zoo"))  # no model anywhere: every statement is "train it"
    runs = tmp_path / "runs"
    made_up("uniform", np.full(10, 0.1)).save(runs / "uniform" / "uniform")
    pair = np.zeros(10)
    pair[[1, 7]] = 0.5
    made_up("ambiguous:1,7", pair).save(runs / "ambiguous" / "ambiguous_1,7")
    (runs / "interpolation" / "p_8=1,9=0").mkdir(parents=True)  # a broken folder: said so, not fatal
    (runs / "interpolation" / "p_8=1,9=0" / "manifest.json").write_text("{not json")
    (runs / "interpolation" / "p_8=1,9=0" / "samples.npz").write_bytes(b"")
    (runs / "failures" / "without_3").mkdir(parents=True)
    (runs / "failures" / "without_3" / "error.txt").write_text("no generator checkpoint 'gan_without_3'\n")
    assert report.main(["--runs", str(runs), "--dataset", "mnist", "--out", str(tmp_path / "out"),
                        "--experiments", "uniform,ambiguous,interpolation,failures"]) == 0
    md = (tmp_path / "out" / "mnist.md").read_text()
    html = (tmp_path / "out" / "mnist.html").read_text()
    assert "**1 of 13** runs complete" in md  # uniform; ambiguous has 1 of its 45 targets, failures none
    assert "p_8=1,9=0 could not be read (JSONDecodeError" in md
    assert "| mnist/uniform | uniform | 1 / 1 | 4 chains × 25 | 12 | done |" in md
    assert "**1 of 1** sampled (of 45); paper: 38 of 45" in md
    for c in range(10):
        assert f"`python -m lightning_modules.zoo --dataset mnist --profile quick --only gan_without_{c} " in md
        assert f"python sample.py sampling=mnist/failures left_out={c} sample_profile=quick " \
               f"hydra.run.dir={runs}/failures/without_{c}" in md
    assert "44 of 45 targets not sampled yet" not in md  # the ambiguous run's models are missing too: said so
    assert "The classifier `classifier` is not in the zoo" in md and "model missing: classifier, vae" in md
    assert "ambiguous:1,7" in md and "mode" in md and md.count("| ambiguous:1,7 |") >= 2  # pairs and diagnostics
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html and "gan_without_9" in html


@pytest.mark.slow
def test_reproduce_twice_skips_what_the_first_call_finished(checkpoints, tmp_path):
    """Two tiny jobs of the failures experiment (left_out=3,4, tiny models for both), run as make reproduce
    runs them; the second call (through submitit_local) lands in the same job folders and samples nothing again."""
    clf, gen, _ = checkpoints
    cmd = [sys.executable, str(REPO / "scripts" / "reproduce.py"), "--dataset", "mnist", "--experiments", "failures",
           "--sweep", str(tmp_path / "sweep"), "--out", str(tmp_path / "report"), "left_out=3,4",
           f"classifier={clf}", f"generator={gen}", "typicality=null", "num_chains=2", "num_warmup=4",
           "num_samples=4", "sampler.max_steps=4", "wandb=false", "progress=false", "grid_size=4"]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    folders = sorted(p.parent.relative_to(tmp_path / "sweep").as_posix()
                     for p in (tmp_path / "sweep").rglob("class_*/manifest.json"))
    assert folders == ["failures/without_3/class_3", "failures/without_4/class_4"]
    stamp = {f: (tmp_path / "sweep" / f / "samples.npz").stat().st_mtime_ns for f in folders}
    # the launcher is swappable: the second call starts each job in its own process, in the same folders
    again = subprocess.run([*cmd, "--launcher", "submitit_local"], cwd=REPO, capture_output=True, text=True,
                           env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    logs = [p.read_text() for p in (tmp_path / "sweep" / ".submitit").rglob("*_log.*")]
    out = again.stdout + again.stderr + "".join(logs)
    assert "class:3: finished earlier in" in out and "class:4: finished earlier in" in out
    assert "resuming" not in out  # nothing was left half-done either
    assert sorted(p.name for p in (tmp_path / "sweep" / "failures").iterdir()) == ["without_3", "without_4"]
    assert all(stamp[f] <= (tmp_path / "sweep" / f / "samples.npz").stat().st_mtime_ns for f in folders)
    md = (tmp_path / "report" / "mnist.md").read_text()
    assert (tmp_path / "report" / "mnist.html").stat().st_size > 0
    assert "**2 of 2** runs complete" in md and "failures/without_4: diagnostics" in md

def test_further_seeds_join_the_confidence_table_and_the_time_per_experiment_sums_the_calls(tmp_path, monkeypatch):
    """Seed 1's folder (make reproduce SEEDS=0,1) adds its run to the table: two seeds, the mean of the two
    runs' means, their spread; timings.json's two calls for one experiment are summed."""
    import json
    monkeypatch.setenv("ZOO_DIR", str(tmp_path / "empty-zoo"))
    runs, runs1 = tmp_path / "mnist-quick", tmp_path / "mnist-quick-seed1"
    a = made_up("uniform", np.full(10, 0.1), seed=0)
    b = made_up("uniform", np.full(10, 0.1), seed=1, sampler_seed=1)
    a.save(runs / "uniform" / "uniform")
    b.save(runs1 / "uniform" / "uniform")
    (runs / "timings.json").write_text(json.dumps([
        {"experiment": "uniform", "seed": 0, "wall_s": 100.0, "exit": 0, "code_version": "abc"},
        {"experiment": "uniform", "seed": 0, "wall_s": 20.0, "exit": 0, "code_version": "abc"}]))
    assert report.main(["--runs", str(runs), "--dataset", "mnist", "--out", str(tmp_path / "out"),
                        "--experiments", "uniform", f"--seed-runs={runs1}"]) == 0
    md = (tmp_path / "out" / "mnist.md").read_text()
    means = [s.probs.reshape(-1, 10).mean(0)[0] for s in (a, b)]
    row = next(line for line in md.splitlines() if line.startswith("| mnist/uniform | uniform |") and "±" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "2" and cells[4] == "200"  # seeds; draws: 4 chains × 25 × 2 seeds
    assert cells[5].startswith(f"{np.mean(means):.3f} ± ")
    assert cells[6].startswith(f"{np.std(means, ddof=1):.3f}")
    assert "| uniform | 2 | 2.0 | 0.2 |" in md and "| **total** | 2 | **2.0** | 0.2 |" in md
    assert "Sampler seed 1 (`" in md and "**1 of 1** runs complete" in md
    # a report of another experiment leaves uniform's calls out of its time table
    assert report.main(["--runs", str(runs), "--dataset", "mnist", "--out", str(tmp_path / "out2"),
                        "--experiments", "interpolation"]) == 0
    md2 = (tmp_path / "out2" / "mnist.md").read_text()
    assert "| uniform |" not in md2 and "| **total** |" not in md2
    with pytest.raises(SystemExit, match="does not exist"):
        report.main(["--runs", str(runs), "--dataset", "mnist", "--out", str(tmp_path / "out"),
                     "--experiments", "uniform", f"--seed-runs={tmp_path / 'nowhere'}"])


def test_the_models_table_reads_the_zoo_index_and_says_which_model_is_missing(tmp_path):
    """Each model a job names appears once with the roles it plays; a generator's FID and a classifier's
    accuracy come from the zoo's index.json; a model the index lacks is named as not in the zoo."""
    import json
    from omegaconf import OmegaConf
    zoo = tmp_path / "zoo" / "quick" / "mnist"
    zoo.mkdir(parents=True)
    (zoo / "index.json").write_text(json.dumps({"models": {
        "classifier": {"epochs": 3, "wall_time_s": 120.0, "metrics": {"test/acc": 0.99}, "code_version": "abc"},
        "gan_novel": {"epochs": 14, "wall_time_s": 600.0, "data": {"include": [2, 4]}, "metrics": {},
                      "fid": {"fid_classifier": 801.7, "share_outside_training_classes": 0.187}}}}))

    def job(clf, gen):
        cfg = OmegaConf.create({"paths": {"zoo_dir": str(tmp_path / "zoo")}, "zoo_profile": "quick",
                                "data": {"dataset": "mnist"}, "classifier": clf, "generator": gen})
        return report.Job("x", "mnist/x", [], "x", tmp_path / "x", cfg)

    rows = {r["model"]: r for r in report.model_rows([job("classifier", "gan_novel"), job("classifier", "gan_without_3")])}
    assert sorted(rows) == ["classifier", "gan_novel", "gan_without_3"]
    assert rows["classifier"]["role"] == "classifier" and rows["classifier"]["test acc"] == "0.990"
    assert rows["gan_novel"]["FID (classifier features)"] == "801.7" and rows["gan_novel"]["data"] == "include [2, 4]"
    assert rows["gan_novel"]["share outside its classes"] == "0.187" and rows["gan_novel"]["train min"] == "10.0"
    assert rows["gan_without_3"]["status"].startswith("not in ") and "FID (classifier features)" not in rows["gan_without_3"]


def test_the_test_set_table_sets_both_counts_beside_what_sampling_found(tmp_path):
    """Ours and the paper's test-set counts, beside the pairs the ambiguous run found and the left-out
    classes the failures runs reached at mean ≥ 0.9 (one of two here: the other sits at 0.6)."""
    half = np.zeros(10); half[[1, 7]] = 0.5
    sure = np.zeros(10); sure[3] = 0.97; sure[0] = 0.03
    unsure = np.zeros(10); unsure[4] = 0.6; unsure[0] = 0.4
    amb = report.Job("ambiguous", "mnist/ambiguous", [], "ambiguous", tmp_path, None,
                     sets={"ambiguous:1,7": made_up("ambiguous:1,7", half)})
    f3 = report.Job("failures", "mnist/failures", [], "failures/without_3", tmp_path, None,
                    sets={"class:3": made_up("class:3", sure)})
    f4 = report.Job("failures", "mnist/failures", [], "failures/without_4", tmp_path, None,
                    sets={"class:4": made_up("class:4", unsure)})
    baseline = {"ambiguous": {"count": 25, "pairs": {"0-2": 1, "4-9": 5}}, "misclassified": {"count": 32}}
    amb_row, wrong_row = report.testset_rows(baseline, "mnist", [amb, f3, f4])
    assert amb_row["test set (ours)"] == "25 examples, 2 pairs" and amb_row["test set (paper)"] == "12 examples, 10 pairs"
    assert amb_row["sampling (ours)"] == "1 of 45 pairs found"
    assert wrong_row["test set (ours)"] == "32 examples" and wrong_row["test set (paper)"] == "84 examples"
    assert wrong_row["sampling (ours)"] == "1 of 2 classes run (of 10)"
    none_row = report.testset_rows(None, "mnist", [])[0]
    assert none_row["test set (ours)"] == "not computed" and none_row["sampling (ours)"] == "not run"


@pytest.mark.parametrize("argv, says", [(["--seeds", "0,x"], "comma-separated integers"),
                                        (["--seeds", "0,1,1"], "distinct"), (["--seeds", "0,-1"], "≥ 0"),
                                        (["--seeds", "0", "seed=3"], "not a seed= override")])
def test_bad_seeds_are_refused_before_anything_runs(tmp_path, capsys, argv, says):
    from scripts import reproduce
    assert reproduce.main(["--dataset", "mnist", "--sweep", str(tmp_path / "s"), "--no-report", *argv]) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_each_further_seed_runs_every_experiment_in_its_own_folder_and_its_time_is_kept_there(tmp_path, monkeypatch):
    """SEEDS=0,2: the plain folder without a seed override, then <sweep>-seed2 with seed=2; each call's time
    lands in its seed's timings.json; the report is told about the seed folder."""
    import json
    from scripts import reproduce
    calls, reported = [], []
    monkeypatch.setattr(reproduce.subprocess, "call", lambda cmd, cwd=None: calls.append(cmd) or 0)
    monkeypatch.setattr(reproduce, "report_main", lambda argv: reported.append(argv) or 0)
    sweep = tmp_path / "mnist-quick"
    assert reproduce.main(["--dataset", "mnist", "--sweep", str(sweep), "--out", str(tmp_path / "out"), "--experiments", "uniform,interpolation",
                           "--seeds", "0,2", "--no-views"]) == 0
    runs = [(c[3], next(a for a in c if a.startswith("hydra.sweep.dir=")), [a for a in c if a.startswith("seed=")])
            for c in calls]
    assert runs == [("sampling=mnist/uniform", f"hydra.sweep.dir={sweep}", []),
                    ("sampling=mnist/interpolation", f"hydra.sweep.dir={sweep}", []),
                    ("sampling=mnist/uniform", f"hydra.sweep.dir={sweep}-seed2", ["seed=2"]),
                    ("sampling=mnist/interpolation", f"hydra.sweep.dir={sweep}-seed2", ["seed=2"])]
    for folder, seed in ((sweep, 0), (tmp_path / "mnist-quick-seed2", 2)):
        kept = json.loads((folder / "timings.json").read_text())
        assert [(c["experiment"], c["seed"], c["exit"]) for c in kept] == [("uniform", seed, 0), ("interpolation", seed, 0)]
    assert reported[0][:2] == ["--runs", str(sweep)] and f"--seed-runs={sweep}-seed2" in reported[0]
    assert reported[0][reported[0].index("--experiments") + 1] == "uniform,interpolation"


def test_a_call_for_some_experiments_reports_those_an_earlier_call_left_in_the_folder(tmp_path, monkeypatch):
    """EXPERIMENTS=uniform after a call that ran ambiguous: the report still shows ambiguous (in the report's
    order), not uniform alone; an experiment never run is not listed."""
    from scripts import reproduce
    reported = []
    monkeypatch.setattr(reproduce.subprocess, "call", lambda cmd, cwd=None: 0)
    monkeypatch.setattr(reproduce, "report_main", lambda argv: reported.append(argv) or 0)
    sweep = tmp_path / "mnist-quick"
    (sweep / "ambiguous").mkdir(parents=True)
    (sweep / "failures").mkdir()  # not a job's folder (those are failures/without_<c>): not a run of failures
    assert reproduce.main(["--dataset", "mnist", "--sweep", str(sweep), "--out", str(tmp_path / "out"), "--experiments", "uniform", "--no-views"]) == 0
    shown = reported[0][reported[0].index("--experiments") + 1].split(",")
    assert sorted(shown) == ["ambiguous", "uniform"] and shown == sorted(shown, key=reproduce.ORDER.index)


def test_a_lane_runs_its_seed_alone_and_the_report_takes_in_every_seed_folder_beside_the_sweep(tmp_path, monkeypatch):
    """SEEDS=1 in a lane: only <sweep>-seed1 runs (seed=1, no seed-0 call, no views); the report is told about
    seed 1 and about the seed-2 folder another lane left, not about a folder that only looks like one."""
    from scripts import reproduce
    calls, reported = [], []
    monkeypatch.setattr(reproduce.subprocess, "call", lambda cmd, cwd=None: calls.append(cmd) or 0)
    monkeypatch.setattr(reproduce, "views", lambda *a: calls.append("views"))
    monkeypatch.setattr(reproduce, "report_main", lambda argv: reported.append(argv) or 0)
    sweep = tmp_path / "mnist-quick"
    (tmp_path / "mnist-quick-seed2").mkdir()
    (tmp_path / "mnist-quick-seed03").mkdir()  # not a name seed_folder makes
    assert reproduce.main(["--dataset", "mnist", "--sweep", str(sweep), "--out", str(tmp_path / "out"), "--experiments", "uniform", "--seeds", "1"]) == 0
    assert [(next(a for a in c if a.startswith("hydra.sweep.dir=")), [a for a in c if a.startswith("seed=")])
            for c in calls] == [(f"hydra.sweep.dir={sweep}-seed1", ["seed=1"])]
    assert f"--seed-runs={sweep}-seed1,{sweep}-seed2" in reported[0]
    assert reproduce.main(["--dataset", "mnist", "--sweep", str(sweep), "--out", str(tmp_path / "out"), "--experiments", "uniform", "--seeds", "1",
                           "num_chains=4"]) == 0  # with overrides, only this call's seeds
    assert f"--seed-runs={sweep}-seed1" in reported[1]
