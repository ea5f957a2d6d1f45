# Two commands set everything up on a fresh machine:
#   make demo   build the offline demo dataset end to end (no API key, GPU or network)
#   make test   run the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRIST  := $(VENV)/bin/prist

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# One stamp per set of extras, redone when pyproject.toml changes.
$(VENV)/.stamp-%: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[$*]'
	touch $@

demo: $(VENV)/.stamp-demo
	$(PRIST) demo --out demo_output

test: $(VENV)/.stamp-dev
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(VENV)/.stamp-dev
	$(PY) benchmarks/run.py

clean:
	rm -rf demo_output .pytest_cache
