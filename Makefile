# Two commands: `make demo` and `make test`. Each sets everything up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p demo-run
	cd demo-run && ../$(VENV)/bin/modelpilot demo

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_tracking.py
	$(PY) benchmarks/bench_drift.py
	$(PY) benchmarks/bench_serving.py
	$(PY) benchmarks/bench_backtest.py
	$(PY) benchmarks/bench_ui.py

clean:
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache
