# Two commands: `make demo` and `make test`. Each sets itself up on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DATA_DIR ?= data
export WANDB_MODE ?= offline
export DATA_DIR

.PHONY: setup data data-fashion test test-slow demo bench zoo reproduce clean
DATASET ?= mnist
PROFILE ?= quick

# Reinstall only when pyproject.toml changes (the stamp records the last install).
$(VENV)/.stamp-install: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

setup: $(VENV)/.stamp-install

data: setup
	$(BIN)/python -m datamodules.prepare mnist --data-dir $(DATA_DIR)

# Fashion-MNIST offline comes from Debian's dataset-fashion-mnist (see .ci/run).
data-fashion: setup
	$(BIN)/python -m datamodules.prepare fashion --data-dir $(DATA_DIR)

test: setup data data-fashion
	$(BIN)/python -m pytest -m "not slow" -q; rc=$$?; [ $$rc -eq 5 ] && exit 0 || exit $$rc

test-slow: setup data data-fashion
	$(BIN)/python -m pytest -m slow -q; rc=$$?; [ $$rc -eq 5 ] && exit 0 || exit $$rc

TRAIN_SEED ?= 0
demo: setup data
	$(BIN)/python scripts/demo.py --train-seed $(TRAIN_SEED)

bench: setup data
	$(BIN)/python bench/bench_samplers.py

# Every model one dataset needs (skips finished ones, resumes interrupted ones), then its FID table.
zoo: setup data data-fashion
	$(BIN)/python -m lightning_modules.zoo --dataset $(DATASET) --profile $(PROFILE)
	$(BIN)/python scripts/fid_table.py zoo/$(PROFILE)/$(DATASET)/index.json --out results/fid_$(DATASET)_$(PROFILE).md

# The paper's sampling experiments (configs/sampling/$(DATASET)/, Secs. 4.3-4.7): one Hydra multirun per
# experiment into the fixed folder runs/reproduce/$(DATASET)-$(PROFILE), so a second call skips finished
# targets and resumes interrupted ones; then docs/report/$(DATASET).md and .html. A run whose models are
# not in the zoo is listed in the report with the command that trains them (and the exit status is 1).
#   make reproduce DATASET=mnist PROFILE=quick [EXPERIMENTS=uniform,failures] [SEEDS=0,1,2] [LAUNCHER=submitit_local] [ARGS='num_chains=4']
# SEEDS: further sampler seeds run every experiment again on the same models (runs/reproduce/<d>-<p>-seed<k>),
# for the confidence table's between-seed spread; SEEDS=1 runs seed 1 alone (e.g. one lane per seed, ARGS=--no-report),
# and any later call's report takes in every seed folder that exists.
EXPERIMENTS ?=
SEEDS ?= 0
LAUNCHER ?=
ARGS ?=
reproduce: setup
	$(BIN)/python -m datamodules.prepare $(DATASET) --data-dir $(DATA_DIR)
	$(BIN)/python scripts/reproduce.py --dataset $(DATASET) --profile $(PROFILE) --experiments '$(EXPERIMENTS)' \
		--seeds '$(SEEDS)' --launcher '$(LAUNCHER)' --out docs/report $(ARGS)

clean:
	rm -rf runs outputs multirun wandb lightning_logs
