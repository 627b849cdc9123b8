# The two commands an operator needs: `make up` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SPEC   ?= specs/single-node.yaml
STAMP  := $(VENV)/.installed

.PHONY: up test lint unit bench clean

# A fresh clone has nothing: build the venv from the pinned requirements, once per change of them.
$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Pulumi provisioning is not built yet, so `make up` runs the embedded local runtime:
# a local broker and the planned consumer groups, until Ctrl-C.
up: $(STAMP)
	@echo "make up: running the embedded local runtime for $(SPEC) (Ctrl-C stops it)"
	$(PY) -m infra up --local $(SPEC)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/plan_scale.py

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
