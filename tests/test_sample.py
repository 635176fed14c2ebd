"""sample.py end to end on tiny real checkpoints: run folder, figures, W&B offline, and early errors."""
import json

import numpy as np
import trex
import pytest

import sample as sample_entry
from conftest import REPO, compose_cfg, data_root  # noqa: F401  (checkpoints: a conftest fixture)
from trex.targets import TargetError
from wandb_records import keys_when_written


def sample_cfg(checkpoints, out, *extra):
    clf, gen, lenet = checkpoints
    return compose_cfg("sample", [f"classifier={clf}", f"generator={gen}", f"typicality={lenet}", "typicality_bank=2000",
                                  "num_chains=8", "num_warmup=20", "num_samples=5", "sampler.max_steps=8",
                                  "progress=false", "grid_size=16", *extra], out)


def test_two_targets_share_one_run(checkpoints, tmp_path):
    cfg = sample_cfg(checkpoints, tmp_path, "targets=[class:4,'ambiguous:1,7']")
    result = sample_entry.run(cfg)
    assert [r["target"] for r in result["summary"]] == ["class:4", "ambiguous:1,7"]
    for sub in ("class_4", "ambiguous_1,7"):
        folder = tmp_path / sub
        for f in ("samples.npz", "manifest.json", "grid.png", "confidence.png", "typicality.png"):
            assert (folder / f).stat().st_size > 0, f
        assert not (folder / "resume.pt").exists()
    table = (tmp_path / "diagnostics.md").read_text()
    assert "class:4" in table and "ambiguous:1,7" in table
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s[0]["samples"] == 40 and 0 <= s[0]["near_0.1"] <= 1 and 0 <= s[0]["typical"] <= 1
    assert "| typical |" in table and "stuck chains" in table
    want = {"class_4/near_0.1", "ambiguous_1,7/confidence/_type", "class_4/grid/path", "diagnostics/_type"}
    keys = keys_when_written(lambda: next((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"), None), want)
    assert want <= keys


def test_interpolation_target_group(checkpoints, tmp_path):
    cfg = sample_cfg(checkpoints, tmp_path, "target=interpolation", "target.steps=3", "wandb=false")
    result = sample_entry.run(cfg)
    assert [r["target"] for r in result["summary"]] == ["p:8=1,9=0", "p:8=0.5,9=0.5", "p:8=0,9=1"]


def test_bad_target_fails_before_models_load(tmp_path):
    cfg = compose_cfg("sample", ["targets=['p:1=0.7,2=0.7']", "classifier=/nonexistent.ckpt"], tmp_path)
    with pytest.raises(TargetError, match="simplex"):
        sample_entry.run(cfg)


def test_missing_checkpoint_says_how_to_get_one(tmp_path):
    cfg = compose_cfg("sample", ["classifier=no-such-model"], tmp_path)
    with pytest.raises(FileNotFoundError, match="train.py experiment=mnist/classifier"):
        sample_entry.run(cfg)


def test_zoo_names_come_from_this_dataset_and_profile(tmp_path):
    """`generator=gan` once resolved by a glob over every dataset, so MNIST runs silently loaded
    the Fashion-MNIST GAN (sorted first). A name now means <zoo>/<profile>/<dataset>/<name>.ckpt."""
    from lightning_modules.zoo import resolve_checkpoint
    for profile, dataset in [("quick", "fashion"), ("quick", "mnist"), ("paper", "mnist")]:
        (tmp_path / profile / dataset).mkdir(parents=True)
        (tmp_path / profile / dataset / "gan.ckpt").write_bytes(b"")
    assert resolve_checkpoint("gan", tmp_path, "quick", "mnist") == tmp_path / "quick/mnist/gan.ckpt"
    assert resolve_checkpoint("gan", tmp_path, "paper", "mnist") == tmp_path / "paper/mnist/gan.ckpt"
    with pytest.raises(FileNotFoundError, match="it has gan"):
        resolve_checkpoint("vae", tmp_path, "quick", "mnist")


def test_class_outside_the_classifier_fails_before_sampling(checkpoints, tmp_path):
    cfg = sample_cfg(checkpoints, tmp_path, "targets=[class:12]", "wandb=false")
    with pytest.raises(TargetError, match="class 12 is not among"):
        sample_entry.run(cfg)
    assert not list(tmp_path.glob("*/samples.npz"))


def test_classifier_from_another_dataset_is_refused(checkpoints, tmp_path):
    cfg = sample_cfg(checkpoints, tmp_path, "data.dataset=fashion", "wandb=false")
    with pytest.raises(ValueError, match="classifier was trained on 'mnist'"):
        sample_entry.run(cfg)


def test_bench_rows_compare_pooled_ess_with_multi_chain_nuts(checkpoints, tmp_path):
    """The benchmark script end to end at toy lengths: every row is there, and the ratios divide
    by the right NUTS row (single chain for vs_nuts, several chains for vs_nuts_multi)."""
    import sys
    sys.path.insert(0, str(REPO / "bench"))
    import bench_samplers
    clf, gen, _ = checkpoints
    rows = bench_samplers.main([f"--classifier={clf}", f"--generator={gen}", "--target=class:3",
                                "--nuts-warmup=4", "--nuts-samples=6", "--nuts-multi=2:4:6", "--chains=4",
                                "--warmup=10", "--samples=6", "--many=8:10:6:bfloat16:2,8:10:6:float32:2:smc,8:10:6:float32:2:surrogate", "--threads=1",
                                f"--out={tmp_path}"])
    names = [r["sampler"] for r in rows]
    assert names == ["Pyro NUTS (paper)", "Pyro NUTS (2 chains)", "trex HMC (batched)",
                     "trex HMC (8 chains, 10 + 6, bfloat16 gradients)",
                     "trex HMC (8 chains, 10 + 6, SMC warm-up)", "trex HMC (8 chains, 10 + 6, surrogate gradients)",
                     "trex RWM (batched)"]
    assert rows[-2]["surrogate_grads"] > 0 and rows[2]["surrogate_grads"] == "-"
    single, multi = rows[0], rows[1]
    assert (single["chains"], multi["chains"], multi["kept"]) == (1, 2, 12)
    for r in rows:
        assert r["vs_nuts"] == round(r["ess_per_s"] / single["ess_per_s"], 1)
        assert r["vs_nuts_multi"] == round(r["ess_per_s"] / multi["ess_per_s"], 1)
        # what each row paid for: classifier gradients, or (RWM, and surrogate HMC, which takes none) forward passes
        gradient_free = "RWM" in r["sampler"] or "surrogate" in r["sampler"]
        assert (r["forward_evals"] if gradient_free else r["grad_evals"]) > 0
        assert 0 <= r["within_0.1"] <= 1
    assert rows[-2]["grad_evals"] == 0  # the surrogate's trajectories never ask the classifier for a gradient
    saved = json.loads((tmp_path / "samplers_class_3.json").read_text())["rows"]
    assert [(r["sampler"], r["ess_per_s"]) for r in saved] == [(r["sampler"], r["ess_per_s"]) for r in rows]
    assert "vs_nuts_multi" in (tmp_path / "samplers_class_3.md").read_text()


def test_a_finished_target_is_skipped_and_a_changed_one_refused(checkpoints, tmp_path, capsys):
    cfg = sample_cfg(checkpoints, tmp_path, "targets=[class:4]", "wandb=false")
    first = sample_entry.run(cfg)["summary"][0]
    again = sample_entry.run(cfg)["summary"][0]
    assert "class:4: finished earlier in" in capsys.readouterr().out
    assert again["confidence"] == first["confidence"] and again["wall_s"] == first["wall_s"]
    with pytest.raises(trex.UserError, match=r"different run \(seed: 0 there, 1 now"):
        sample_entry.run(sample_cfg(checkpoints, tmp_path, "targets=[class:4]", "wandb=false", "seed=1"))
