"""The zoo driver: trains what is missing, skips what is done, resumes after an interruption."""
import json

import pytest

from lightning_modules import zoo


class FakeTrainer:
    """Stands in for train.py: writes what a finished run writes; can die like an interrupted one."""

    def __init__(self, die_on=None):
        self.calls, self.die_on = [], die_on

    def __call__(self, experiment, run_dir, profile, overrides):
        self.calls.append((experiment, overrides))
        if experiment == self.die_on:
            return 130  # killed
        ck = run_dir / "checkpoints" / "best.ckpt"
        ck.parent.mkdir(parents=True, exist_ok=True)
        ck.write_bytes(experiment.encode())
        (run_dir / "metrics.json").write_text(json.dumps({
            "best_checkpoint": str(ck), "metrics": {"test/acc": 0.99}, "epochs": 3, "model": "M",
            "data": {"include": None, "exclude": [3] if "without_3" in experiment else None},
            "fid": {"fid_classifier": 1.5} if "gan" in experiment else None}))
        return 0


def test_builds_index_and_skips_finished(tmp_path):
    fake = FakeTrainer()
    index = zoo.build("mnist", "quick", tmp_path, only=["classifier", "gan_without_3"], train_fn=fake)
    folder = tmp_path / "quick" / "mnist"
    assert (folder / "classifier.ckpt").read_bytes() == b"mnist/classifier"
    assert (folder / "gan_without_3.ckpt").read_bytes() == b"mnist/gan_without_3"
    entry = json.loads((folder / "index.json").read_text())["models"]["gan_without_3"]
    assert entry["data"]["exclude"] == [3] and entry["fid"]["fid_classifier"] == 1.5
    assert entry["checkpoint"] == str(folder / "gan_without_3.ckpt") and entry["profile"] == "quick"
    # generators get the zoo's full-data classifier as their FID feature network
    assert f"fid_classifier={folder / 'classifier.ckpt'}" in fake.calls[1][1]
    again = FakeTrainer()
    zoo.build("mnist", "quick", tmp_path, only=["classifier", "gan_without_3"], train_fn=again)
    assert again.calls == []
    assert index["models"].keys() == {"classifier", "gan_without_3"}


def test_interrupted_zoo_continues_where_it_stopped(tmp_path):
    with pytest.raises(RuntimeError, match="resumes"):
        zoo.build("mnist", "quick", tmp_path, only=["classifier", "vae", "gan"],
                  train_fn=FakeTrainer(die_on="mnist/vae"))
    index = json.loads((tmp_path / "quick" / "mnist" / "index.json").read_text())
    assert list(index["models"]) == ["classifier"]
    second = FakeTrainer()
    zoo.build("mnist", "quick", tmp_path, only=["classifier", "vae", "gan"], train_fn=second)
    assert [c[0] for c in second.calls] == ["mnist/vae", "mnist/gan"]


def test_model_list_covers_the_paper():
    names = [n for n, _ in zoo.model_list("fashion")]
    assert len(names) == 26 and names[0] == "classifier"
    assert {"gan_novel", "classifier_novel", "ambivalent", "gan_without_9", "vae_without_0"} <= set(names)
    with pytest.raises(ValueError, match="unknown zoo models"):
        zoo.build("mnist", "quick", "/tmp/unused-zoo", only=["gan_without_11"], train_fn=FakeTrainer())


def test_fid_table_pairs_and_left_out_share(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("fid_table", zoo.ROOT / "scripts" / "fid_table.py")
    ft = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ft)

    def entry(fid, exclude=None, shares=None, floor=None):
        shares = shares or {}
        unseen = sum(v for c, v in shares.items() if int(c) in (exclude or []))  # as evaluate.py reports it
        return {"dataset": "mnist", "profile": "quick", "epochs": 1, "wall_time_s": 60,
                "data": {"include": None, "exclude": exclude},
                "fid": {"fid_classifier": fid, "class_shares": shares, "share_outside_training_classes": unseen,
                        "real_share_outside_training_classes": floor}}
    index = {"models": {"gan_without_3": entry(100.0, [3], {"3": 0.015, "4": 0.985}, floor=0.004),
                        "vae_without_3": entry(300.0, [3], {"3": 0.05, "4": 0.95}),
                        "gan": entry(400.0), "vae": entry(200.0)}}
    rows = {r["model"]: r for r in ft.rows(index)}
    assert rows["gan_without_3"]["left_out_share"] == "0.0150"
    assert rows["gan"]["left_out_share"] == "-"
    # the real-image floor is a property of the data: the VAE twin shows the GAN's
    assert rows["gan_without_3"]["real_floor"] == rows["vae_without_3"]["real_floor"] == "0.0040"
    assert rows["gan"]["real_floor"] == "-"
    lines = ft.pairs(index)
    assert "| gan_without_3 | vae_without_3 | 100.0 | 300.0 | yes | 1.50 % | 5.00 % | 0.40 % |" in lines
    assert "| gan | vae | 400.0 | 200.0 | NO | - | - | - |" in lines
    timing = ft.timing(index)  # every entry took 1 minute: 4 models, 4 minutes
    assert "| gan | 2 | 1.0 | 2.0 |" in timing
    assert timing[-1].startswith("| **all** | 4 |") and "**4**" in timing[-1]


def test_retrain_pattern_trains_finished_models_again_and_adds_their_time(tmp_path):
    zoo.build("mnist", "quick", tmp_path, only=["classifier", "gan", "gan_without_3"], train_fn=FakeTrainer())
    folder = tmp_path / "quick" / "mnist"
    (folder / "runs" / "gan" / "checkpoints" / "last.ckpt").write_bytes(b"resumable")
    index = json.loads((folder / "index.json").read_text())
    index["models"]["gan"]["wall_time_s"] = 1000.0
    (folder / "index.json").write_text(json.dumps(index))
    again = FakeTrainer()
    index = zoo.build("mnist", "quick", tmp_path, only=["classifier", "gan", "gan_without_3"],
                      train_fn=again, retrain=["gan*"])
    assert [c[0] for c in again.calls] == ["mnist/gan", "mnist/gan_without_3"]
    assert index["models"]["gan"]["wall_time_s"] >= 1000.0  # resumed: the earlier part counts
    assert index["models"]["gan_without_3"]["wall_time_s"] < 1000.0  # no last.ckpt: a fresh run
