"""The zoo driver: trains what is missing, skips what is done, resumes after an interruption."""
import json

import pytest

from lightning_modules import zoo
from lightning_modules.evaluate import classifier_stamp


class FakeTrainer:
    """Stands in for train.py: writes what a finished run writes; can die like an interrupted one."""

    def __init__(self, die_on=None, tag=b"", stamp=False):
        self.calls, self.die_on, self.tag, self.stamp = [], die_on, tag, stamp

    def __call__(self, experiment, run_dir, profile, overrides):
        self.calls.append((experiment, overrides))
        if experiment == self.die_on:
            return 130  # killed
        ck = run_dir / "checkpoints" / "best.ckpt"
        ck.parent.mkdir(parents=True, exist_ok=True)
        ck.write_bytes(experiment.encode() + self.tag)
        fid = {"fid_classifier": 1.5} if "gan" in experiment else None
        if fid and self.stamp:  # as evaluate.generator_report does: which classifier scored it
            fid["judge"] = classifier_stamp(run_dir.parent.parent / "classifier.ckpt")
        (run_dir / "metrics.json").write_text(json.dumps({
            "best_checkpoint": str(ck), "metrics": {"test/acc": 0.99}, "epochs": 3, "model": "M",
            "data": {"include": None, "exclude": [3] if "left_out=3" in experiment else None}, "fid": fid,
            "threads": 2, "torch": "2.x", "weights": f"digest-of-{experiment}"}))
        return 0


def test_builds_index_and_skips_finished(tmp_path):
    fake = FakeTrainer()
    index = zoo.build("mnist", "quick", tmp_path, only=["classifier", "gan_without_3"], train_fn=fake)
    folder = tmp_path / "quick" / "mnist"
    assert (folder / "classifier.ckpt").read_bytes() == b"mnist/classifier"
    assert (folder / "gan_without_3.ckpt").read_bytes() == b"mnist/gan_without left_out=3"
    entry = json.loads((folder / "index.json").read_text())["models"]["gan_without_3"]
    assert entry["data"]["exclude"] == [3] and entry["fid"]["fid_classifier"] == 1.5
    assert entry["checkpoint"] == str(folder / "gan_without_3.ckpt") and entry["profile"] == "quick"
    # what retraining it bit for bit takes, and the digest to check the result against
    assert (entry["threads"], entry["torch"], entry["weights"]) == (2, "2.x", "digest-of-mnist/gan_without left_out=3")
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
    assert len(names) == 27 and names[0] == "classifier" and "lenet" in names  # lenet: the typicality judge
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
    assert "WARNING" in ft.judges(index) and "--rescore" in ft.judges(index)  # nothing stamped
    for e in index["models"].values():
        e["fid"]["judge"] = {"checkpoint": "c.ckpt", "sha256": "ab12"}
    index["models"]["classifier"] = {"dataset": "mnist", "epochs": 3, "metrics": {"test/acc": 0.99}}
    assert ft.judges(index) == ("Scored by the zoo's full-data classifier (3 epochs, test accuracy 0.9900), "
                                "weights sha256 ab12, for every generator.")
    del index["models"]["classifier"]
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
    assert [c[0] for c in again.calls] == ["mnist/gan", "mnist/gan_without left_out=3"]
    assert index["models"]["gan"]["wall_time_s"] >= 1000.0  # resumed: the earlier part counts
    assert index["models"]["gan_without_3"]["wall_time_s"] < 1000.0  # no last.ckpt: a fresh run


class FakeScorer:
    def __init__(self):
        self.calls = []

    def __call__(self, entry, checkpoint, classifier):
        self.calls.append(checkpoint.stem)
        return {"fid_classifier": 2.5, "judge": classifier_stamp(classifier)}


def test_retrained_classifier_scores_its_generators_again(tmp_path):
    names = ["classifier", "gan", "gan_without_3"]
    zoo.build("mnist", "quick", tmp_path, only=names, train_fn=FakeTrainer(stamp=True))
    unchanged = FakeScorer()
    zoo.build("mnist", "quick", tmp_path, only=names, train_fn=FakeTrainer(), score_fn=unchanged)
    assert unchanged.calls == []  # nothing retrained, every score is current
    scorer = FakeScorer()
    index = zoo.build("mnist", "quick", tmp_path, only=names, train_fn=FakeTrainer(tag=b"v2"),
                      retrain=["classifier"], score_fn=scorer)
    assert scorer.calls == ["gan", "gan_without_3"]
    folder = tmp_path / "quick" / "mnist"
    saved = json.loads((folder / "index.json").read_text())
    current = classifier_stamp(folder / "classifier.ckpt")
    assert saved["models"]["gan"]["fid"] == {"fid_classifier": 2.5, "judge": current} == index["models"]["gan"]["fid"]
    assert zoo.stale_scores(saved, folder / "classifier.ckpt", unstamped=True) == []


def test_rescore_takes_unstamped_scores_only_when_asked(tmp_path):
    zoo.build("mnist", "quick", tmp_path, only=["classifier", "gan", "gan_without_3"], train_fn=FakeTrainer())
    folder = tmp_path / "quick" / "mnist"
    index = json.loads((folder / "index.json").read_text())
    assert zoo.stale_scores(index, folder / "classifier.ckpt") == []
    assert zoo.stale_scores(index, folder / "classifier.ckpt", unstamped=True) == ["gan", "gan_without_3"]
    scorer = FakeScorer()
    zoo.rescore("mnist", "quick", tmp_path, only=["gan_without_3"], score_fn=scorer)
    assert scorer.calls == ["gan_without_3"]
    again = FakeScorer()
    zoo.rescore("mnist", "quick", tmp_path, score_fn=again)  # the one already done is skipped
    assert again.calls == ["gan"]
    with pytest.raises(ValueError, match="train it first"):
        zoo.rescore("fashion", "quick", tmp_path, score_fn=again)


def test_score_generator_loads_the_checkpoint_on_its_own_classes(tmp_path, monkeypatch):
    """The glue: the generator comes out of its checkpoint and the data split leaves its class out."""
    import pytorch_lightning as pl
    import torch

    from lightning_modules import evaluate
    from lightning_modules.gan import GANModule

    model = GANModule(latent_dim=5, width=4)
    pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, default_root_dir=tmp_path).fit(model, torch.utils.data.DataLoader(
                   torch.utils.data.TensorDataset(torch.rand(8, 1, 28, 28), torch.zeros(8)), batch_size=4))
    ck = tmp_path / "gan_without_3.ckpt"
    model.trainer.save_checkpoint(ck)
    seen = {}

    def fake_report(generator, dm, classifier):
        seen.update(latent=generator.latent_dim, training=generator.training, classes=dm.classes,
                    classifier=classifier, data_dir=dm.data_dir)
        return {"fid_classifier": 3.0}

    monkeypatch.setattr(evaluate, "generator_report", fake_report)
    entry = {"dataset": "mnist", "data": {"include": None, "exclude": [3]}}
    assert zoo.score_generator(entry, ck, tmp_path / "classifier.ckpt", data_dir=tmp_path / "data") == \
        {"fid_classifier": 3.0}
    assert seen == {"latent": 5, "training": False, "classes": [0, 1, 2, 4, 5, 6, 7, 8, 9],
                    "classifier": str(tmp_path / "classifier.ckpt"), "data_dir": str(tmp_path / "data")}


def test_two_zoo_commands_at_once_keep_each_others_models(tmp_path):
    """While one command trains, another finishes a model and writes the index: neither is lost."""
    folder = tmp_path / "quick" / "mnist"
    other = FakeTrainer()

    class Meanwhile(FakeTrainer):
        def __call__(self, experiment, run_dir, profile, overrides):
            if experiment == "mnist/gan":  # the other command lands its VAE while this one trains the GAN
                zoo.build("mnist", "quick", tmp_path, only=["vae"], train_fn=other)
            return super().__call__(experiment, run_dir, profile, overrides)

    zoo.build("mnist", "quick", tmp_path, only=["classifier", "gan"], train_fn=Meanwhile())
    index = json.loads((folder / "index.json").read_text())
    assert set(index["models"]) == {"classifier", "vae", "gan"}
    assert [c[0] for c in other.calls] == ["mnist/vae"]
    assert not list(folder.glob("*.tmp"))
