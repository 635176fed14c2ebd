"""Resume files: a different run is refused by name, a crafted file runs no code, a resumed run says so."""
import copy

import pytest
import torch

import trex
from test_runner import DyingHMC, Interrupt, make_post
from trex.resume import ResumeError
from trex.safeload import CheckpointError
from trex.samplers import HMC, RWM

pytestmark = pytest.mark.usefixtures("one_thread")
BASE = dict(num_chains=4, num_warmup=20, num_samples=10, seed=1, progress=False, checkpoint_every=5)


def interrupted(tiny_models, ck, **kw):
    """Leave a resume file at `ck`, as a run killed after 12 steps would."""
    with pytest.raises(Interrupt):
        trex.sample(make_post(tiny_models), DyingHMC(12, max_steps=8), checkpoint=ck, **{**BASE, **kw})


@pytest.mark.parametrize("change, key", [
    (dict(seed=2), "seed"),
    (dict(sampler=RWM()), "sampler"),
    (dict(sampler=HMC(max_steps=9)), "sampler.max_steps"),
    (dict(init="prior"), "init"),
    (dict(sigma_schedule="constant"), "sigma_schedule"),
    (dict(sampler=HMC(max_steps=8, surrogate=True)), "sampler.surrogate"),
    (dict(num_samples=11), "num_samples"),
])
def test_resume_refuses_a_run_with_any_other_setting(tiny_models, tmp_path, change, key):
    """Before, the signature held only target, lengths, σ and resample: a changed seed, sampler,
    sampler setting, init, σ schedule or surrogate silently continued the old state."""
    ck = tmp_path / "resume.pt"
    interrupted(tiny_models, ck)
    sampler = change.pop("sampler", HMC(max_steps=8))
    with pytest.raises(ResumeError, match=rf"different run \({key}: .* there, .* now"):
        trex.sample(make_post(tiny_models), sampler, checkpoint=ck, **{**BASE, **change})
    assert ck.exists()  # refused, not overwritten


def test_resume_refuses_other_model_weights(tiny_models, tmp_path):
    ck = tmp_path / "resume.pt"
    interrupted(tiny_models, ck)
    decoder, clf = tiny_models
    other = copy.deepcopy(clf)
    with torch.no_grad():
        other.net[1].bias.add_(0.01)
    post = trex.RelaxedPosterior(trex.LatentGaussian(decoder), other, "class:3", sigma=0.05)
    with pytest.raises(ResumeError, match="models: "):
        trex.sample(post, HMC(max_steps=8), checkpoint=ck, **BASE)


def test_a_resumed_run_says_so_and_counts_every_part(tiny_models, tmp_path, capsys):
    ck = tmp_path / "resume.pt"
    interrupted(tiny_models, ck)
    res = trex.sample(make_post(tiny_models), HMC(max_steps=8), checkpoint=ck, **BASE)
    assert "resuming class:3 from step 10 of 30" in capsys.readouterr().out
    assert [r["from_step"] for r in res.meta["resumes"]] == [10]
    assert res.meta["steps"] == 30  # counted over both parts
    fresh = trex.sample(make_post(tiny_models), HMC(max_steps=8), **BASE)
    assert fresh.meta["resumes"] == [] and fresh.meta["steps"] == 30
    assert res.meta["batched_grad_evals"] == fresh.meta["batched_grad_evals"]


class _Marker:
    """Unpickling this writes a file: what a malicious checkpoint would do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def crafted(path, marker):
    torch.save({"signature": {}, "state_dict": _Marker(str(marker))}, path)  # a real checkpoint file
    assert not marker.exists()


def test_a_crafted_resume_file_runs_no_code(tiny_models, tmp_path):
    ck, marker = tmp_path / "resume.pt", tmp_path / "ran"
    crafted(ck, marker)
    with pytest.raises(CheckpointError, match=r"refused the resume state .*resume.pt"):
        trex.sample(make_post(tiny_models), HMC(), checkpoint=ck, **BASE)
    assert not marker.exists()


@pytest.mark.parametrize("loader", ["classifier", "generator"])
def test_a_crafted_checkpoint_runs_no_code(tmp_path, loader):
    from lightning_modules.classifier import load_classifier
    from lightning_modules.loading import load_generator
    ck, marker = tmp_path / "model.ckpt", tmp_path / "ran"
    crafted(ck, marker)
    load = load_classifier if loader == "classifier" else load_generator
    with pytest.raises(CheckpointError, match=rf"refused the {loader} checkpoint .*model.ckpt"):
        load(ck)
    assert not marker.exists()


def test_a_summary_setting_is_not_a_different_run(tiny_models, tmp_path):
    """tol only changes what the summaries call "within": a run may resume with another one."""
    ck = tmp_path / "resume.pt"
    interrupted(tiny_models, ck)
    res = trex.sample(make_post(tiny_models), HMC(max_steps=8), checkpoint=ck, **{**BASE, "tol": 0.2})
    assert res.meta["resumes"][0]["from_step"] == 10 and res.meta["tol"] == 0.2


def test_the_run_state_moves_to_the_models_device():
    from trex.resume import to_device
    from trex.samplers.base import State
    from trex.stuck import StuckWatch
    watch = StuckWatch(2, 10, 0, "cpu")
    state, out_watch = to_device((State(torch.zeros(2, 3), torch.zeros(2), None), watch), "cpu")
    assert isinstance(state, State) and state.grad is None and out_watch is watch and watch.idle.device.type == "cpu"
