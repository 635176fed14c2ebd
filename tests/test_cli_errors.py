"""Every mistake a user makes with `python sample.py ...` ends in one clear message: exit status 2,
no Python traceback, and no run folder left behind."""
import math
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO, data_root


@pytest.fixture(scope="module")
def ckpts(checkpoints, tmp_path_factory):
    """The tiny real checkpoints, plus damaged and mislabelled copies of them."""
    clf, vae, lenet = checkpoints
    d = tmp_path_factory.mktemp("bad")
    raw = open(clf, "rb").read()
    (d / "truncated.ckpt").write_bytes(raw[: len(raw) // 2])
    (d / "garbage.ckpt").write_bytes(b"not a checkpoint at all")
    ck = torch.load(clf, weights_only=True)
    ck["hyper_parameters"]["dataset"] = "fashion"
    torch.save(ck, d / "fashion_classifier.ckpt")
    ck = torch.load(vae, weights_only=True)
    first = next(k for k in ck["state_dict"] if "decoder" in k and k.endswith("weight"))
    ck["state_dict"][first] = torch.full_like(ck["state_dict"][first], math.nan)
    torch.save(ck, d / "nan_vae.ckpt")
    ck = torch.load(clf, weights_only=True)
    last = [k for k in ck["state_dict"] if k.startswith("net.") and k.endswith("bias")][-1]
    ck["state_dict"][last] = torch.full_like(ck["state_dict"][last], math.inf)
    torch.save(ck, d / "inf_classifier.ckpt")
    ck = torch.load(clf, weights_only=True)
    ck["hyper_parameters"]["classes"] = list(range(5, 15))  # labels MNIST does not have
    torch.save(ck, d / "odd_labels.ckpt")
    (d / "a_file").write_text("")
    return {"clf": clf, "vae": vae, "lenet": lenet, **{p.stem: str(p) for p in d.iterdir()}}


def run_sample(tmp_path, *overrides, env=None):
    run_dir = tmp_path / "runs" / "this-run"
    cmd = [sys.executable, "sample.py", f"hydra.run.dir={run_dir}", "num_chains=2", "num_warmup=4", "num_samples=2",
           "progress=false", "wandb=false", "typicality_bank=500", *overrides]
    full_env = {**os.environ, "DATA_DIR": str(data_root()), "RUNS_DIR": str(tmp_path / "runs"),
                "ZOO_DIR": str(tmp_path / "zoo"), **(env or {})}
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=full_env, timeout=300)
    return r, run_dir


def refused(r, run_dir, *phrases):
    text = r.stdout + r.stderr
    assert r.returncode == 2, text[-2000:]
    assert "Traceback" not in text, text[-2000:]
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1, r.stderr[-2000:]
    for p in phrases:
        assert p in r.stderr, r.stderr[-2000:]
    assert not run_dir.exists(), list(run_dir.rglob("*"))


def models(c, clf="clf", gen="vae"):
    return [f"classifier={c[clf]}", f"generator={c[gen]}", f"typicality={c['lenet']}"]


CASES = {
    "bad target": (lambda c: [*models(c), "targets=[klass:4]"], ["klass:4"]),
    "class out of range": (lambda c: [*models(c), "targets=[class:12]"], ["class 12 is not among"]),
    "generator given as classifier": (lambda c: models(c, clf="vae"), ["not a classifier checkpoint", "generator="]),
    "classifier given as generator": (lambda c: models(c, gen="clf"), ["not a generator checkpoint", "classifier="]),
    "truncated checkpoint": (lambda c: models(c, clf="truncated"),
                             ["classifier checkpoint", "truncated.ckpt", "truncated or damaged"]),
    "not a checkpoint": (lambda c: models(c, gen="garbage"), ["generator checkpoint", "garbage.ckpt"]),
    "classifier of another dataset": (lambda c: models(c, clf="fashion_classifier"),
                                      ["classifier was trained on 'fashion'", "cross_dataset=true"]),
    "data.dataset differs": (lambda c: [*models(c), "data.dataset=fashion"], ["trained on 'mnist'"]),
    "generator outputs NaN": (lambda c: models(c, gen="nan_vae"), ["nan_vae.ckpt", "NaN or Inf"]),
    "classifier outputs Inf": (lambda c: models(c, clf="inf_classifier"), ["inf_classifier.ckpt", "NaN or Inf"]),
    "labels the dataset lacks": (lambda c: models(c, clf="odd_labels"), ["labels 10-14", "mnist has 0-9"]),
    "missing generator": (lambda c: [f"classifier={c['clf']}", "generator=vae"],
                          ["no generator checkpoint 'vae'", "lightning_modules.zoo --dataset mnist --profile quick --only vae"]),
    "unknown key": (lambda c: [*models(c), "num_chain=4"], ["unknown config key 'num_chain'", "did you mean num_chains"]),
    "unknown sampler": (lambda c: [*models(c), "sampler=hcm"], ["sampler/hcm", "hmc"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_error_is_one_clear_message(ckpts, tmp_path, case):
    overrides, phrases = CASES[case]
    r, run_dir = run_sample(tmp_path, *overrides(ckpts))
    refused(r, run_dir, *phrases)


def test_unwritable_run_folder(ckpts, tmp_path):
    r, _ = run_sample(tmp_path, *models(ckpts), f"hydra.run.dir={ckpts['a_file']}/run")
    refused(r, tmp_path / "runs" / "this-run", "cannot write the run folder", "a_file")


def test_missing_data(ckpts, tmp_path):
    """No real images for the typicality check and no way to fetch them: say so and how to fix it."""
    empty = tmp_path / "no-data"
    env = {"DATA_DIR": str(empty), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
    r, run_dir = run_sample(tmp_path, *models(ckpts), env=env)
    refused(r, run_dir, "needs the real mnist images", "make data", "typicality=null")


def test_mixed_datasets_run_when_meant(ckpts, tmp_path):
    """cross_dataset=true is how the domain-adaptation experiments say the mix is meant."""
    r, run_dir = run_sample(tmp_path, *models(ckpts, clf="fashion_classifier"), "cross_dataset=true",
                            "targets=[class:4]", "typicality=null")
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert (run_dir / "class_4" / "samples.npz").exists()


def test_train_unknown_key_suggests_the_closest(tmp_path):
    run_dir = tmp_path / "train-run"
    r = subprocess.run([sys.executable, "train.py", "trainer.max_epoch=3", f"hydra.run.dir={run_dir}"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    refused(r, run_dir, "unknown config key 'trainer.max_epoch'", "did you mean trainer.max_epochs")


def test_precheck_leaves_hydras_own_flags_to_hydra():
    from lightning_modules.cli import _overrides
    assert _overrides(["seed=1", "--cfg", "job", "--resolve", "num_chains=4"]) == ["seed=1", "num_chains=4"]
    assert _overrides(["-m", "seed=0,1"]) is None and _overrides(["--help"]) is None
    assert _overrides(["--config-name=other", "seed=1"]) is None
