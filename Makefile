# Two commands set everything up on a fresh machine:
#   make demo   build the offline demo dataset end to end (no API key, GPU or network)
#   make test   run the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRIST  := $(VENV)/bin/prist

LINT   := build/lint

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

TORCH_CPU ?= 2.13.0

# One stamp per set of extras, redone when pyproject.toml changes.
$(VENV)/.stamp-%: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[$*]'
	touch $@

# The tests need every extra: the CPU build of torch goes first, so that no requirement
# pulls the CUDA wheels; labelme (annotate) lets the rasteriser parity tests run.
$(VENV)/.stamp-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q torch==$(TORCH_CPU)
	$(PY) -m pip install -q -e '.[dev,model,annotate]'
	touch $@

demo: $(VENV)/.stamp-demo
	$(PRIST) demo --out demo_output

# ruff, then the import-layer contracts on the built wheel (the root folders annotation/,
# prompts/ and model/ only become prist_builder.* once installed), then the tests.
lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	rm -rf $(LINT) && $(PY) -m pip wheel -q --no-deps -w $(LINT)/wheel .
	$(PY) -m pip install -q --no-deps --no-compile --target $(LINT)/site $(LINT)/wheel/*.whl
	cd $(LINT)/site && $(CURDIR)/$(VENV)/bin/lint-imports $(CURDIR)/pyproject.toml

test: lint
	PRIST_WHEEL="$$(ls $(CURDIR)/$(LINT)/wheel/*.whl)" $(PY) -m pytest -q -p no:cacheprovider

bench: $(VENV)/.stamp-test
	$(PY) benchmarks/run.py

clean:
	rm -rf demo_output .pytest_cache build
