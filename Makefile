# usvid: the two commands a user needs are `make demo` and `make test`.
# Both create (or update) the virtual environment .venv first; the install step is re-run only
# when pyproject.toml changes. torch is pinned to 2.13.0 so the local CPU wheel is used instead
# of gigabytes of CUDA packages.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: venv test demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[test]" "$(TORCH_PIN)"
	touch $(STAMP)

# Lint and format check first (seconds), then the tests: CI runs this target.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	MPLBACKEND=Agg $(PY) -m pytest -n 2 $(PYTEST_ARGS)

demo: $(STAMP)
	MPLBACKEND=Agg $(PY) tools/demo.py $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,bench]" "$(TORCH_PIN)"
	@echo "Benchmarks live in benchmarks/; see benchmarks/RESULTS.md for the commands."

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
