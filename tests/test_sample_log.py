"""W&B dashboards of a sampling experiment, offline: the runs share the experiment's group, and each
target logs a table of its draws (image, target, confidences, chain, typicality) besides its figures."""
import json

import sample as sample_entry
from conftest import compose_cfg  # noqa: F401  (checkpoints: a conftest fixture)
from wandb_records import keys_when_written, records


def test_a_sampling_experiment_logs_its_group_and_a_table_of_draws(checkpoints, tmp_path):
    clf, gen, lenet = checkpoints
    cfg = compose_cfg("sample", ["sampling=mnist/uniform", f"classifier={clf}", f"generator={gen}",
                                 f"typicality={lenet}", "typicality_bank=2000", "num_chains=4", "num_warmup=10",
                                 "num_samples=5", "sampler.max_steps=8", "progress=false", "grid_size=8"], tmp_path)
    sample_entry.run(cfg)
    want = {"uniform/draws/_type", "uniform/draws/nrows", "uniform/grid/path", "uniform/confidence/path"}
    find = lambda: next((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"), None)  # noqa: E731
    assert want <= keys_when_written(find, want)
    groups = {r.run.run_group for r in records(find()) if r.WhichOneof("record_type") == "run"}
    assert groups == {"mnist/uniform"}
    tables = list((tmp_path / "wandb").glob("offline-run-*/files/media/table/uniform/draws_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["image", "target", "chain", "draw", *[f"p_{k}" for k in range(10)], "distance",
                                "typicality"]
    assert len(table["data"]) == 20  # 4 chains × 5 draws, under the cap
    assert {row[1] for row in table["data"]} == {"uniform"} and {row[2] for row in table["data"]} == {0, 1, 2, 3}
    assert all(abs(sum(row[4:14]) - 1) < 1e-4 for row in table["data"])


def test_the_table_caps_its_rows_evenly_over_the_chains():
    import numpy as np
    from lightning_modules.sample_log import draws_table
    from trex.results import SampleSet
    c, s = 8, 100
    probs = np.full((c, s, 10), 0.1)
    res = SampleSet(latents=np.zeros((c, s, 5)), probs=probs, logdensity=np.zeros((c, s)),
                    accepted=np.ones((c, s), bool), divergent=np.zeros((c, s), bool), step_size=np.ones(c),
                    ideal=np.full(10, 0.1), meta={"target": "uniform", "classes": list(range(10))})
    t = draws_table(res, max_rows=64)
    assert len(t.data) == 64 and "image" not in t.columns and "typicality" not in t.columns
    assert np.bincount([r[1] for r in t.data]).tolist() == [8] * 8
