"""Which models a run drew from (weights digests, models.json) and the seed ledger that lets seeds sampled
elsewhere join the confidence table only when they drew from the same models."""
import json
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from lightning_modules.runinfo import record_models
from trex.analysis import seeds
from trex.errors import UserError
from trex.safeload import weights_digest

sys.path.insert(0, str(REPO))
from scripts import report, reproduce  # noqa: E402
from test_reproduce import made_up  # noqa: E402


def test_the_weights_digest_follows_the_weights_and_nothing_else_in_the_file():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))  # holds a 0-d tensor too
    state = net.state_dict()
    a = weights_digest({"state_dict": state, "epoch": 3, "optimizer_states": [{"lr": 1e-3}], "path": "/a"})
    assert a == weights_digest({"state_dict": {k: v.clone() for k, v in reversed(state.items())}, "path": "/b"})
    assert a == weights_digest(dict(state))  # a bare state dict
    changed = {k: v.clone() for k, v in state.items()}
    changed["0.weight"][0, 0] += 1e-6
    assert weights_digest({"state_dict": changed}) != a
    renamed = {("x." + k): v for k, v in state.items()}
    assert weights_digest(renamed) != a


def test_a_run_folder_started_with_other_weights_refuses_to_go_on(tmp_path):
    paths = {"classifier": "zoo/c.ckpt", "generator": "zoo/g.ckpt"}
    first = record_models(tmp_path, paths, {"classifier": "c1", "generator": "g1"})
    assert json.loads((tmp_path / "models.json").read_text())["generator"] == {"checkpoint": "zoo/g.ckpt",
                                                                               "weights": "g1"}
    assert record_models(tmp_path, paths, {"classifier": "c1", "generator": "g1"}) == first  # a resume
    with pytest.raises(UserError, match=r"other weights for the generator \(generator: g1 then, g2 now"):
        record_models(tmp_path, paths, {"classifier": "c1", "generator": "g2"})


def _row(seed, job="uniform", target="uniform", gen="g1", mean=0.1):
    stats = {"target": target, "classes": [0], "draws": 100, "mean": np.array([mean]), "std": np.array([0.01])}
    return seeds.row(seed, "mnist/uniform", job, stats, {"classifier": "c1", "generator": gen}, "abc")


def test_merge_replaces_a_seeds_rows_and_calls_and_joining_needs_the_same_models(tmp_path):
    led = seeds.merge(seeds.empty("mnist", "quick"), [_row(1), _row(2, mean=0.2), _row(2, target="other")],
                      [{"experiment": "uniform", "seed": 1, "wall_s": 60.0}])
    led = seeds.merge(led, [_row(2, gen="g9", mean=0.3)], [{"experiment": "uniform", "seed": 1, "wall_s": 30.0}])
    assert [(r["seed"], r["target"], r["mean"]) for r in led["rows"]] == [
        (1, "uniform", [0.1]), (2, "other", [0.1]), (2, "uniform", [0.3])]
    assert led["calls"] == [{"experiment": "uniform", "seed": 1, "wall_s": 30.0}]
    rows, left = seeds.joining(led, live_seeds=[0], reference={"uniform": {"classifier": "c1", "generator": "g1"}})
    assert [(r["seed"], r["target"]) for r in rows] == [(1, "uniform"), (2, "other")]
    assert left == [("uniform", "seed 2 uniform uniform: other models (generator g9 there, g1 here)")]
    rows, left = seeds.joining(led, live_seeds=[0, 1], reference={})  # seed 1 is live: its folder says it
    assert rows == [] and len(left) == 2 and all("no run of it here" in x for _, x in left)
    (tmp_path / "l.json").write_text(json.dumps(led))
    assert seeds.load(tmp_path / "l.json", "mnist", "quick") == led
    with pytest.raises(ValueError, match="seed ledger of mnist/quick, not fashion/quick"):
        seeds.load(tmp_path / "l.json", "fashion", "quick")


def test_a_ledger_seed_joins_the_report_only_where_it_drew_from_the_same_models(tmp_path, monkeypatch):
    """Seed 0 is here (a run folder with its models.json); the ledger holds seed 1 on the same models and
    seed 2 on another generator: seed 1 joins the confidence table and the time table, seed 2 is named."""
    monkeypatch.setenv("ZOO_DIR", str(tmp_path / "empty-zoo"))
    runs = tmp_path / "mnist-quick"
    a = made_up("uniform", np.full(10, 0.1), seed=0)
    a.save(runs / "uniform" / "uniform")
    record_models(runs / "uniform", {"classifier": "c", "generator": "g"}, {"classifier": "c1", "generator": "g1"})
    other = made_up("uniform", np.full(10, 0.1), seed=1, sampler_seed=1)
    from trex.analysis.table import run_stats
    b = run_stats(other)
    led = seeds.merge(seeds.empty("mnist", "quick"), [
        seeds.row(1, "mnist/uniform", "uniform", b, {"classifier": "c1", "generator": "g1"}, "def"),
        seeds.row(2, "mnist/uniform", "uniform", b, {"classifier": "c1", "generator": "g2"}, "def")],
        [{"experiment": "uniform", "seed": 1, "wall_s": 90.0}, {"experiment": "uniform", "seed": 2, "wall_s": 9.0}])
    ledger = tmp_path / "ledger.json"
    ledger.write_text(json.dumps(led))
    assert report.main(["--runs", str(runs), "--dataset", "mnist", "--out", str(tmp_path / "out"),
                        "--experiments", "uniform", "--ledger", str(ledger)]) == 0
    md = (tmp_path / "out" / "mnist.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| mnist/uniform | uniform |") and "±" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    means = [a.probs.reshape(-1, 10).mean(0)[0], other.probs.reshape(-1, 10).mean(0)[0]]
    assert cells[3] == "2" and cells[4] == "200" and cells[5].startswith(f"{np.mean(means):.3f} ± ")
    assert "Sampler seed 1, from the seed ledger" in md and "**1 of 1** runs" in md
    assert "seed 2 uniform uniform: other models (generator g2 there, g1 here)" in md
    assert "| uniform | 1 | 1.5 |" in md  # seed 1's call from the ledger: one call, 90 s; seed 2's left out
    assert report.main(["--runs", str(runs), "--dataset", "mnist", "--out", str(tmp_path / "out3"),
                        "--experiments", "uniform", "--ledger", str(tmp_path / "none.json")]) == 0
    assert "| 1 | 100 |" in (tmp_path / "out3" / "mnist.md").read_text()  # no ledger: seed 0 alone


def test_reproduce_books_a_seeds_finished_runs_in_the_ledger(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DIR", str(tmp_path / "empty-zoo"))
    folder = tmp_path / "mnist-quick-seed1"
    res = made_up("uniform", np.full(10, 0.1), seed=3, sampler_seed=1)
    res.save(folder / "uniform" / "uniform")
    (folder / "timings.json").write_text(json.dumps([{"experiment": "uniform", "seed": 1, "wall_s": 50.0},
                                                     {"experiment": "ambiguous", "seed": 1, "wall_s": 5.0}]))
    ledger = tmp_path / "out" / "mnist_quick_seeds.json"
    reproduce.book("mnist", "quick", folder, 1, "uniform", ledger)
    assert json.loads(ledger.read_text())["rows"] == []  # no models.json: which models is unknown, so no row
    record_models(folder / "uniform", {"classifier": "c", "generator": "g"}, {"classifier": "c1", "generator": "g1"})
    reproduce.book("mnist", "quick", folder, 1, "uniform", ledger)
    led = json.loads(ledger.read_text())
    (r,) = led["rows"]
    assert (r["seed"], r["experiment"], r["job"], r["target"], r["draws"]) == (1, "mnist/uniform", "uniform", "uniform", 100)
    assert r["models"] == {"classifier": "c1", "generator": "g1"}
    assert r["mean"] == pytest.approx(res.probs.reshape(-1, 10).mean(0).tolist())
    assert led["calls"] == [{"experiment": "uniform", "seed": 1, "wall_s": 50.0}]


def test_the_report_says_whether_the_test_set_baseline_scored_the_runs_classifier(tmp_path):
    from omegaconf import OmegaConf
    job = report.Job("uniform", "mnist/uniform", [], "uniform", tmp_path / "uniform",
                     OmegaConf.create({"classifier": "classifier"}))
    job.sets = {"uniform": object()}
    job.folder.mkdir()
    record_models(job.folder, {"classifier": "c", "generator": "g"}, {"classifier": "c1", "generator": "g1"})
    base = {"classifier": "zoo/quick/mnist/classifier.ckpt"}
    assert "does not record which weights" in report.baseline_pairing(base, [job])
    assert "the same weights as the runs' classifier (digest c1)" in report.baseline_pairing({**base, "weights": "c1"}, [job])
    assert "**of other weights than the runs' classifier** (digest c9; the runs: c1)" in \
        report.baseline_pairing({**base, "weights": "c9"}, [job])
    job.cfg = OmegaConf.create({"classifier": "classifier_novel"})  # no run of that classifier: nothing to say
    assert report.baseline_pairing({**base, "weights": "c9"}, [job]) == "."


def test_ledgers_of_two_zoos_group_by_models_and_a_shared_seed_counts_once():
    from trex.analysis.table import confidence_table
    one = seeds.merge(seeds.empty("mnist", "quick"), [_row(0, mean=0.1), _row(1, mean=0.3), _row(2, mean=0.2)])
    two = seeds.merge(seeds.empty("mnist", "quick"), [_row(0, gen="g2", mean=0.5), _row(2, mean=0.2)])
    groups = seeds.by_models([one, two])
    assert [(e, m["generator"], sorted(s["seed"] for s in st)) for e, m, st in groups] == [
        ("mnist/uniform", "g1", [0, 1, 2]), ("mnist/uniform", "g2", [0])]
    row = confidence_table({groups[0][0]: groups[0][2]})[0]
    assert row["seeds"] == 3 and row["mean"] == pytest.approx([0.2]) and row["spread"] == pytest.approx([0.1])
    clash = seeds.merge(seeds.empty("mnist", "quick"), [_row(1, mean=0.4)])  # seed 1, same models, other result
    with pytest.raises(ValueError, match="booked twice on the same models"):
        seeds.by_models([one, clash])


def test_seed_table_script_pools_ledgers_of_two_sessions_and_names_what_is_missing(tmp_path, capsys):
    from scripts import seed_table
    one, two = tmp_path / "a", tmp_path / "b"
    one.mkdir(), two.mkdir()
    (one / "mnist_quick_seeds.json").write_text(json.dumps(seeds.merge(seeds.empty("mnist", "quick"), [_row(0), _row(1)])))
    (two / "mnist_quick_seeds.json").write_text(json.dumps(seeds.merge(seeds.empty("mnist", "quick"), [_row(2)])))
    assert seed_table.main(["--dataset", "mnist", str(one), str(two), "--out", str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "**1 of 1 targets in the ledgers have at least 3 seeds; experiments complete at 3 seeds: 1 of 7** (uniform)" in text
    assert "runs with no seed in any ledger: high_confidence, ambiguous, ambivalent/classifier" in text
    assert "failures/without_0, failures/without_1" in text and "novel_class." in text
    assert "| mnist/uniform | uniform | classifier c1, generator g1 | 3 | 300 |" in text
    assert seed_table.main(["--dataset", "mnist", str(one), "--out", str(tmp_path / "u.md")]) == 0
    assert "Fewer than 3 seeds: mnist/uniform uniform (2)" in (tmp_path / "u.md").read_text()
    assert seed_table.main(["--dataset", "mnist", str(tmp_path / "nowhere")]) == 2
    assert "no seed ledger" in capsys.readouterr().err


def test_seed_table_counts_an_experiment_with_a_run_not_booked_as_incomplete():
    from scripts import seed_table
    stats = {"target": "class:0", "classes": [0], "draws": 100, "mean": np.array([0.95]), "std": np.array([0.02])}
    led = seeds.merge(seeds.empty("mnist", "quick"), [
        seeds.row(k, "mnist/failures", "failures/without_0", stats, {"classifier": "c1", "generator": "g0"}, "abc")
        for k in range(3)])
    rows = seed_table.table_rows([led])
    expected = [("failures", f"failures/without_{c}") for c in range(10)]
    text = seed_table.markdown(rows, [], "cmd", 3, expected, {"failures/without_0"})
    assert "1 of 1 targets in the ledgers have at least 3 seeds; experiments complete at 3 seeds: 0 of 1" in text
    assert "runs with no seed in any ledger: failures/without_1" in text and "failures/without_0," not in text
    assert seed_table.markdown(rows, [], "cmd", 3, expected[:1], {"failures/without_0"}).count("complete at 3 seeds: 1 of 1") == 1
