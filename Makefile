# Two commands do everything on a fresh machine (Python 3.11 and make):
#   make demo   create the environment, run a shipped recipe offline on the embedded model
#   make test   create the environment, run the whole test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# llama-cpp-python compiles from source once (~3.5 min on 2 cores); pip keeps the
# built wheel in its cache, so later installs take seconds.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: install demo test check bench snapshot-update clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	@# An editable install gets no bytecode (pip compiles only what it copies); without
	@# it, and with PYTHONDONTWRITEBYTECODE set, every start compiles Podium anew.
	$(BIN)/python -m compileall -q core providers tui
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/podium run document-pipeline

test: $(STAMP)
	$(BIN)/pytest -q

check: $(STAMP)
	$(BIN)/ruff check core providers tui tests bench
	@mkdir -p .typecheck/podium
	@for d in core providers tui; do ln -sfn ../../$$d .typecheck/podium/$$d; done
	$(BIN)/mypy

snapshot-update: $(STAMP)
	$(BIN)/pytest -q tests/test_tui_snapshots.py --snapshot-update

bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[test,bench]"
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/review.py
	$(BIN)/python bench/remote_burst.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/agents.py
	$(BIN)/python bench/map_scale.py
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/tui.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
