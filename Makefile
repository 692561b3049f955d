# Two commands: `make demo` and `make test`. Each sets everything up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint typecheck bench clean mutation

# the PostgreSQL and browser tests fail instead of skipping when their service is missing
# (`.ci/run` starts both); `make test MODELPILOT_REQUIRE_SERVICES=0` lets them skip
MODELPILOT_REQUIRE_SERVICES ?= 1
export MODELPILOT_REQUIRE_SERVICES

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# the sentence model of the embedding-drift test (tests/monitoring/test_embedding_real.py) and
# the torch it needs, in a folder of their own that only that test's subprocess reads: torch
# in the venv would make every model load import it
EMBED       := $(VENV)/embeddings
EMBED_STAMP := $(EMBED)/.installed
$(EMBED_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet --target $(EMBED) $$($(PY) -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['embeddings-test']))")
	touch $(EMBED_STAMP)

demo: $(STAMP)
	mkdir -p demo-run
	cd demo-run && ../$(VENV)/bin/modelpilot demo

# branch coverage on every run; .ci/coverage_floor.py fails the build below the floors.
# One pytest worker per core (at most 4, pytest-xdist); tests/conftest.py keeps the tests that
# share an expensive fixture on one worker (--dist loadgroup)
PYTEST_WORKERS ?= auto
test: $(STAMP) $(EMBED_STAMP) lint typecheck
	rm -f .coverage .coverage.*
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadgroup --cov --cov-report=term
	$(PY) .ci/coverage_floor.py

# mutation testing of the decision modules (slow: not part of `make test` or CI);
# MUTATE=auth,rollout,policy picks the module groups, see docs/testing.md
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,mutation]'
	$(PY) tools/mutation.py $(if $(MUTATE),--modules $(MUTATE))

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
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache .coverage .coverage.* mutants
