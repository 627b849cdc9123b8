# The two commands an operator needs: `make up` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SPEC   ?= specs/single-node.yaml
STAMP  := $(VENV)/.installed

.PHONY: up down test lint bench bench-plan bench-consumers clean

# A fresh clone has nothing: build the venv from the pinned requirements, once per change of them.
$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# `pulumi up` of stack dev where the Pulumi CLI and Docker exist, else the embedded
# local runtime (a local broker and the planned consumer groups, until Ctrl-C).
up: $(STAMP)
	scripts/stack.sh up $(SPEC)

down: $(STAMP)
	scripts/stack.sh down $(SPEC)

# Style, then the architecture: imports point one way (import-linter), the pure stages type-check.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

# The Docker engine and busybox the sweeper tests use come from Debian (as root).
test: lint
	scripts/test-deps.sh
	$(PY) -m pytest

QUIX_VENV  := benchmarks/.venv-quix
QUIX_STAMP := $(QUIX_VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

$(QUIX_STAMP): benchmarks/requirements-quix.txt
	$(PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(BENCH_STAMP): $(STAMP) benchmarks/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	touch $@

# Figures go to benchmarks/results/ (JSON, and PNG for the consumers).
bench: bench-plan bench-consumers

bench-plan: $(STAMP)
	$(PY) benchmarks/plan_scale.py

bench-consumers: $(BENCH_STAMP) $(QUIX_STAMP)
	$(PY) benchmarks/consumer_throughput.py

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
