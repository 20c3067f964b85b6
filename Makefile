# The two commands of the README: `make repro` (the pipeline) and `make test` (the test suite).
# Both create .venv and install requirements.txt first, when missing or out of date.
VENV := .venv
# Stage commands run `python`, which must be the virtual environment's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PYTHON ?= python3

.PHONY: repro test bench venv
venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	touch $@

repro: venv
	dvc repro
	dvc metrics show

test: venv
	python -m pytest -q tests

bench: venv
	python -m benchmarks.time_to_accuracy --device cpu --seeds 5
