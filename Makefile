# Every target works as the first command on a fresh machine: it makes .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: install test lint run demo bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## .venv with hfharvest and the dev tools

lint: $(STAMP)  ## ruff (lint and format) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict

test: lint  ## lint, then every test (the slow end-to-end ones too: they take seconds)
	$(BIN)/pytest -q

run: $(STAMP)  ## harvest the real Hub: models served by hf-inference, by likes and downloads
	$(BIN)/hfharvest fetch --sort likes --sort downloads --inference-provider hf-inference -o models.jsonl

bench: $(STAMP)  ## hfharvest against its baselines; writes bench/results/*.json (minutes)
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

soak: $(STAMP)  ## a 2,000-page walk, 5 % of requests failing, with and without drift; 200 runs signalled at random (minutes)
	SOAK_PAGES=2000 $(BIN)/pytest -q tests/test_reliability.py -k soak
	SIGNAL_RUNS=200 $(BIN)/pytest -q tests/test_hostile.py -k signals

demo: $(STAMP)  ## offline: the same harvest against the emulator, into demo/models.jsonl
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache demo *.egg-info
