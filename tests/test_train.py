"""train.py: every config composes and instantiates, each model trains a few steps, W&B offline
writes its run folder, a short real run beats chance, and bad input fails before training."""
import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from conftest import REPO, data_root
from wandb_records import keys_when_written
import train as train_entry

CONFIGS = str(REPO / "configs")
EXPERIMENTS = sorted(str(p.relative_to(REPO / "configs/experiment").with_suffix(""))
                     for p in (REPO / "configs/experiment").rglob("*.yaml"))
TRAIN_EXPERIMENTS = [e for e in EXPERIMENTS if not e.endswith(("ambiguous", "demo"))]


def cfg_for(overrides, tmp_path=None, config="train"):
    with initialize_config_dir(version_base="1.3", config_dir=CONFIGS):
        cfg = compose(config, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path or "/tmp/unused")
        cfg.paths.data_dir = str(data_root())
    return cfg


def tiny(tmp_path, experiment, *extra):
    return cfg_for([f"experiment={experiment}", "logger=csv", "trainer.max_epochs=1", "data.subset_train=256",
                    "data.batch_size=64", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
                    "callbacks.progress_bar=false", "fid=false", "trainer.accelerator=cpu", *extra], tmp_path)


@pytest.mark.parametrize("experiment", TRAIN_EXPERIMENTS)
def test_every_experiment_composes_and_instantiates(experiment):
    cfg = cfg_for([f"experiment={experiment}"])
    dm = instantiate(cfg.data)
    model = instantiate(cfg.model, _convert_="all", **train_entry._model_data_args(cfg, dm))
    assert sum(p.numel() for p in model.parameters()) > 0
    assert cfg.trainer.max_epochs >= 1


@pytest.mark.parametrize("group,options", [("profile", ["quick", "paper"]), ("logger", ["wandb", "csv"]),
                                           ("trainer", ["default", "cpu", "ddp"]),
                                           ("model", ["classifier", "ambivalent", "vae", "gan"]),
                                           ("data", ["mnist", "fashion"])])
def test_every_config_group_option(group, options, tmp_path):
    for opt in options:
        cfg = cfg_for([f"{group}={opt}"], tmp_path)
        assert cfg[group] is not None
        if group in ("data", "logger"):
            assert instantiate(cfg[group]) is not None


def test_paper_profile_uses_paper_sizes():
    cfg = cfg_for(["experiment=mnist/gan", "profile=paper"])
    assert cfg.model.width == 64 and cfg.model.latent_dim == 5
    cfg = cfg_for(["experiment=mnist/vae", "profile=paper"])
    assert cfg.model.hidden == 400 and cfg.model.latent_dim == 5
    cfg = cfg_for(["experiment=mnist/classifier", "profile=paper"])
    assert cfg.model.net == "paper_cnn" and cfg.model.optimizer == "adadelta"


def test_fashion_judge_classifier_trains_longer_in_quick_profile():
    """Only the full-data Fashion classifier (the zoo's judge) gets the longer schedule."""
    epochs = {e: cfg_for([f"experiment={e}"]).trainer.max_epochs
              for e in ("fashion/classifier", "fashion/classifier_novel", "mnist/classifier")}
    assert epochs == {"fashion/classifier": 12, "fashion/classifier_novel": 3, "mnist/classifier": 3}
    assert cfg_for(["experiment=fashion/classifier", "profile=paper"]).trainer.max_epochs == 14
    assert cfg_for(["experiment=fashion/classifier", "trainer.max_epochs=1"]).trainer.max_epochs == 1


@pytest.mark.parametrize("experiment", ["mnist/classifier", "mnist/ambivalent", "mnist/vae", "mnist/gan",
                                        "mnist/classifier_novel"])
def test_fast_dev_run_each_model(experiment, tmp_path):
    cfg = tiny(tmp_path, experiment, "trainer.fast_dev_run=true", "test=false")
    train_entry.train(cfg)
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "metrics.json").exists()


def test_subset_classifier_keeps_label_mapping(tmp_path):
    from lightning_modules.classifier import load_classifier
    res = train_entry.train(tiny(tmp_path, "mnist/classifier_novel"))
    net, classes = load_classifier(res["best_checkpoint"])
    assert classes == [0, 1, 3, 6, 9] and net.num_classes == 5


def test_best_and_last_checkpoints_and_the_report_scores_best(tmp_path, monkeypatch):
    """The zoo keeps `best.ckpt`, so the end-of-training FID must describe it; `last.ckpt` must be the
    final epoch. mode=max on the validation loss makes `best` the worse, first epoch."""
    from lightning_modules import evaluate
    from lightning_modules.loading import load_generator
    seen = {}
    monkeypatch.setattr(evaluate, "generator_report",
                        lambda gen, dm, clf, logger=None: seen.setdefault("gen", gen) and {"fid_classifier": 1.0})
    cfg = tiny(tmp_path, "mnist/vae", "callbacks.checkpoint.mode=max", "fid=true",
               f"fid_classifier={tmp_path / 'clf.ckpt'}")
    with open_dict(cfg):
        cfg.trainer.max_epochs = 2
    res = train_entry.train(cfg)
    assert res["fid"] == {"fid_classifier": 1.0} and res["best_checkpoint"] != res["last_checkpoint"]
    z = torch.randn(4, 5)
    best, last = load_generator(res["best_checkpoint"]), load_generator(res["last_checkpoint"])
    assert not torch.equal(best(z), last(z))
    assert torch.equal(seen["gen"](z), best(z))
    # last.ckpt is the final epoch even though it did not improve (what a resume must start from)
    assert torch.load(res["last_checkpoint"], weights_only=True)["epoch"] == 1
    assert torch.load(res["best_checkpoint"], weights_only=True)["epoch"] == 0


def test_short_real_run_beats_chance_and_resumes(tmp_path):
    cfg = cfg_for(["experiment=mnist/classifier", "logger=csv", "trainer.max_epochs=1", "data.subset_train=3000",
                   "callbacks.progress_bar=false", "trainer.accelerator=cpu",
                   "model.scheduler=step"], tmp_path)  # a one-cycle schedule cannot be stretched on resume
    res = train_entry.train(cfg)
    assert res["metrics"]["test/acc"] > 0.8  # chance is 0.1
    assert Path(res["best_checkpoint"]).exists() and Path(res["last_checkpoint"]).exists()
    with open_dict(cfg):
        cfg.trainer.max_epochs = 2
    res2 = train_entry.train(cfg)  # same run folder: continues from last.ckpt instead of starting over
    assert res2["epochs"] == 2
    ck = torch.load(res2["last_checkpoint"], weights_only=True)
    assert ck["epoch"] == 1


def test_training_twice_gives_the_same_weights_and_records_how(tmp_path):
    """Same code, seed, torch and thread count: the same weights bit for bit, which is what lets sampler
    seeds run in different sessions count as seeds of one model. metrics.json says how to get them again."""
    from trex.safeload import read, weights_digest
    a = train_entry.train(tiny(tmp_path / "a", "mnist/classifier"))
    b = train_entry.train(tiny(tmp_path / "b", "mnist/classifier"))
    assert a["weights"] == b["weights"] == weights_digest(read(b["best_checkpoint"], "classifier"))
    assert a["threads"] == torch.get_num_threads() and a["torch"] == torch.__version__
    c = train_entry.train(tiny(tmp_path / "c", "mnist/classifier", "seed=1"))
    assert c["weights"] != a["weights"]  # the digest tells models apart


@pytest.mark.parametrize("experiment", ["mnist/classifier", "mnist/gan"])
def test_a_resumed_training_ends_with_the_weights_of_an_uninterrupted_one(experiment, tmp_path):
    """last.ckpt carries the random state (data order, dropout, GAN noise), so stopping after epoch 1 and
    resuming gives the same weights digest as two epochs in one go."""
    extra = ["trainer.max_epochs=2", "model.scheduler=step"] if experiment.endswith("classifier") else ["trainer.max_epochs=2"]
    whole = train_entry.train(tiny(tmp_path / "whole", experiment, *extra))
    cfg = tiny(tmp_path / "parts", experiment, *extra)
    with open_dict(cfg):
        cfg.trainer.max_epochs = 1
    train_entry.train(cfg)
    with open_dict(cfg):
        cfg.trainer.max_epochs = 2
    resumed = train_entry.train(cfg)
    assert resumed["epochs"] == 2 and resumed["weights"] == whole["weights"]


def test_wandb_offline_run_folder_holds_metrics(tmp_path):
    cfg = tiny(tmp_path, "mnist/classifier", "logger=wandb")
    train_entry.train(cfg)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    want = {"test/acc", "val/acc", "val/loss", "train/loss_epoch"}
    keys = keys_when_written(lambda: next(runs[0].glob("run-*.wandb"), None), want)
    assert want <= keys


def test_unknown_include_class_fails_before_training(tmp_path):
    with pytest.raises(Exception, match="unknown|not a|valid"):
        train_entry.train(tiny(tmp_path, "mnist/classifier", "data.include=[0,1,12]"))
    assert not (tmp_path / "checkpoints").exists()


def test_unknown_config_key_is_refused():
    with pytest.raises(ConfigCompositionException, match="not in struct|Could not override"):
        cfg_for(["experiment=mnist/classifier", "trainer.max_epoch=3"])


def test_unwritable_data_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = tiny(tmp_path / "out", "mnist/classifier")
    with open_dict(cfg):
        cfg.data.data_dir = str(blocker / "data")
    with pytest.raises(Exception, match="data"):
        train_entry.train(cfg)
    assert not (tmp_path / "out" / "checkpoints").exists()


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_leave_one_out_is_one_experiment_with_the_class_as_a_parameter(kind):
    for dataset in ("mnist", "fashion"):
        cfg = cfg_for([f"experiment={dataset}/{kind}_without", "left_out=3"])
        assert list(cfg.data.exclude) == [3] and cfg.name == f"{dataset}-{kind}-without-3"
        assert OmegaConf.to_container(cfg.data, resolve=True)["exclude"] == [3]  # an int, not the string "3"
    from lightning_modules.zoo import model_list
    zoo = dict(model_list("mnist"))
    assert zoo[f"{kind}_without_7"] == f"mnist/{kind}_without left_out=7" and len(zoo) == 27 + 3
    assert list(zoo)[-3:] == ["mlp", "adda_source", "adda"]  # MNIST's extras: domain adaptation, after the 27
