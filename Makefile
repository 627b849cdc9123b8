# The two commands an operator needs: `make up` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SPEC   ?= specs/single-node.yaml
STAMP  := $(VENV)/.installed

.PHONY: up down test deps lint kafka bench bench-plan bench-cluster bench-consumers clean

# A fresh clone has nothing: build the venv from the pinned requirements, once per change of them.
$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# `pulumi up` of stack dev where the Pulumi CLI and Docker exist, else the local runtime
# (the planned cluster as Kafka JVMs on this machine and its consumer groups, until Ctrl-C).
up: $(STAMP) kafka
	scripts/stack.sh up $(SPEC)

down: $(STAMP)
	scripts/stack.sh down $(SPEC)

# Apache Kafka's jars from Maven Central, resolved once into ~/.cache/kafka-log-cluster/.
kafka: $(STAMP)
	$(PY) -m infra jars

# Style, then the architecture: imports point one way (import-linter), the pure stages type-check.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

# Debian's Docker engine, busybox and debootstrap for the Docker tests (as root), Kafka's
# jars; the tests start every broker, ZooKeeper and dockerd they use and stop them.
test: lint deps kafka
	$(PY) -m pytest --durations=20

deps:
	scripts/test-deps.sh

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
bench: bench-plan bench-cluster bench-consumers

bench-plan: $(STAMP)
	$(PY) benchmarks/plan_scale.py

bench-cluster: kafka
	$(PY) benchmarks/cluster_start.py

bench-consumers: $(BENCH_STAMP) $(QUIX_STAMP) kafka
	$(PY) benchmarks/consumer_throughput.py

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
