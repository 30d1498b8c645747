# `make demo` and `make test` work on a fresh machine: they create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export RAY_AUTH_MODE ?= disabled

.PHONY: demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip 2>/dev/null || true
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sched up
	$(BIN)/sched plan configs/examples/quickstart.yaml
	@id=$$($(BIN)/sched submit configs/examples/quickstart.yaml --wait) && \
	  echo "--- sched logs $$id" && $(BIN)/sched logs $$id && \
	  echo "--- sched status $$id" && $(BIN)/sched status $$id
	$(BIN)/sched list -n 5

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/submit_latency.py
	$(BIN)/python benchmarks/placement.py
	$(BIN)/python benchmarks/migration.py
	$(BIN)/python benchmarks/concurrency.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python -m benchmarks.sim.run
	$(BIN)/python -m benchmarks.sim.limit

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
