"""The paper's sampling experiments (configs/sampling/<dataset>/): each composes against sample.yaml,
its targets parse, its jobs have stable, distinct folders (so a rerun of the sweep resumes them), and
the models it names are zoo models, whose training command the report can give."""
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import lightning_modules.cli  # noqa: F401  (registers the run_name resolver)
from conftest import REPO
from lightning_modules.zoo import model_list
from trex.targets import target_specs

CONFIGS = REPO / "configs"
SAMPLING = sorted(str(p.relative_to(CONFIGS / "sampling").with_suffix("")) for p in (CONFIGS / "sampling").rglob("*.yaml"))
KINDS = ["high_confidence", "ambiguous", "uniform", "ambivalent", "interpolation", "failures", "novel_class"]


def jobs(name, *extra):
    import sys
    sys.path.insert(0, str(REPO))
    from scripts.report import expected_jobs
    dataset, kind = name.split("/")
    return expected_jobs(dataset, Path("/runs"), [kind], extra)


def test_every_dataset_has_every_experiment():
    assert SAMPLING == sorted(f"{d}/{k}" for d in ("fashion", "mnist") for k in KINDS)


@pytest.mark.parametrize("name", SAMPLING)
def test_every_sampling_config_composes_against_sample_yaml(name):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        cfg = compose("sample", [f"sampling={name}"], return_hydra_config=True)
    dataset = name.split("/")[0]
    assert cfg.experiment_name == name and cfg.data.dataset == dataset
    assert cfg.hydra.runtime.choices.sample_profile == "quick"
    assert target_specs(cfg.targets, cfg.target)
    zoo = dict(model_list(dataset))
    for j in jobs(name):
        assert OmegaConf.select(j.cfg, "classifier") in zoo and OmegaConf.select(j.cfg, "generator") in zoo
        assert "${" not in j.subdir and "now" not in j.subdir and not j.subdir.isdigit()


@pytest.mark.parametrize("dataset", ["mnist", "fashion"])
def test_the_jobs_and_targets_are_the_papers(dataset):
    found = {k: jobs(f"{dataset}/{k}") for k in KINDS}
    assert {k: len(v) for k, v in found.items()} == {"high_confidence": 1, "ambiguous": 1, "uniform": 1,
                                                     "ambivalent": 2, "interpolation": 1, "failures": 10,
                                                     "novel_class": 1}
    subdirs = [j.subdir for v in found.values() for j in v]
    assert len(set(subdirs)) == 17
    targets = {k: [str(t) for j in v for t in target_specs(j.cfg.targets, j.cfg.target)] for k, v in found.items()}
    assert targets["high_confidence"] == [f"class:{c}" for c in range(10)]
    assert sorted(targets["ambiguous"]) == sorted(f"ambiguous:{i},{j}" for i in range(10) for j in range(i + 1, 10))
    assert targets["uniform"] == ["uniform"]
    assert targets["ambivalent"] == 2 * [f"ambiguous:{i},{(i + 1) % 10}" for i in range(10)]
    assert [j.cfg.classifier for j in found["ambivalent"]] == ["classifier", "ambivalent"]
    a, b = (8, 9) if dataset == "mnist" else (0, 1)
    assert len(targets["interpolation"]) == 11 and targets["interpolation"][0] == f"p:{a}=1,{b}=0"
    assert targets["interpolation"][5] == f"p:{a}=0.5,{b}=0.5"
    assert [(j.cfg.generator, list(j.cfg.targets)) for j in found["failures"]] == \
        [(f"gan_without_{c}", [f"class:{c}"]) for c in range(10)]
    novel = [0, 1, 3, 6, 9] if dataset == "mnist" else [2, 3, 5, 6, 9]
    assert targets["novel_class"] == [f"class:{c}" for c in novel]
    assert found["ambiguous"][0].cfg.population and found["interpolation"][0].cfg.population
    assert found["ambiguous"][0].cfg.generator == "vae" and found["high_confidence"][0].cfg.generator == "gan"


def test_sweeps_given_on_the_command_line_replace_the_configs_own():
    assert [j.subdir for j in jobs("mnist/failures", "left_out=3,4")] == ["failures/without_3", "failures/without_4"]
    assert [j.subdir for j in jobs("mnist/failures", "left_out=7")] == ["failures/without_7"]


def test_profiles_set_the_run_length():
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        paper = compose("sample", ["sampling=mnist/high_confidence", "sample_profile=paper"])
        quick = compose("sample", ["sampling=mnist/high_confidence"])
        plain = compose("sample", [])
        sweep_paper = compose("sample", ["sampling=mnist/ambiguous", "sample_profile=paper"])
        sweep_quick = compose("sample", ["sampling=fashion/ambiguous", "sample_profile=quick"])
    assert (paper.num_warmup, paper.num_samples) == (1000, 1000)
    assert (quick.num_chains, quick.num_warmup, quick.num_samples) == (8, 150, 100)
    assert (plain.num_chains, plain.num_warmup, plain.num_samples, plain.experiment_name) == (64, 300, 300, None)
    # the ambiguity sweeps take the profile's sweep lengths (the paper's budget stays the paper's), and the
    # method the sweep benchmark measured: surrogate HMC with SMC resampling
    assert (sweep_paper.num_chains, sweep_paper.num_warmup, sweep_paper.num_samples) == (10, 1000, 1000)
    assert (sweep_quick.num_chains, sweep_quick.num_warmup, sweep_quick.num_samples) == (16, 150, 750)
    for cfg in (sweep_paper, sweep_quick):
        assert cfg.sampler.surrogate and cfg.resample and cfg.init == "prior_resample"


@pytest.mark.parametrize("name", ["mnist/ambiguous", "mnist/demo"])
def test_the_older_sampling_files_in_experiment_still_compose_against_sample_yaml(name):
    """experiment/mnist/{ambiguous,demo} predate the sampling group (make demo uses the second); the
    training tests skip them, so they are composed against sample.yaml here."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        cfg = compose("sample", [f"experiment={name}"])
    assert target_specs(cfg.targets, cfg.target) and cfg.experiment_name is None
