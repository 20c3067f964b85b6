# The two commands of the README: `make repro` (the pipeline) and `make test` (the test suite;
# `make test-fast` is its quick tier).
# Both create .venv and install requirements.txt first (at requirements.lock's versions), when missing or out of date.
VENV := .venv
# Stage commands run `python`, which must be the virtual environment's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PYTHON ?= python3
# The offline page template of `dvc plots show`; see its rule below.
PLOTS_TEMPLATE := .dvc/plots_template.html

.PHONY: repro test test-fast test-slow bench bench-nproc venv serve bench-serve lock
venv: $(VENV)/.installed $(PLOTS_TEMPLATE)

# uv installs requirements.txt at requirements.lock's versions, in parallel and with the bytecode
# compiled: about a minute faster than pip on two cores
# (benchmarks/notes/hardware.md#2026-12-04-sixteenth-session-zen-4s-make-repro-the-line-models-batches-uv).
# It does not read pip's configuration, so it is handed the indexes pip is configured with
# (tools/pip_indexes.py): this project's machines keep torch's wheels on their disks.
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
UV_INDEXES = --index-strategy unsafe-best-match $$($(VENV)/bin/python -m tools.pip_indexes)
$(UV):
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: requirements.txt requirements.lock | $(UV)
	$(UV) pip install --quiet --python $(VENV)/bin/python --compile-bytecode $(UV_INDEXES) \
		-r requirements.txt -c requirements.lock
	touch $@

# After a change to requirements.txt: resolve it again into requirements.lock (the versions there
# are kept where they still fit), then `make test`.
lock: | $(UV)
	$(UV) pip compile --quiet --python $(VENV)/bin/python $(UV_INDEXES) requirements.txt -o requirements.lock

repro: venv
	dvc repro
	dvc metrics show

# Three pytest-xdist workers, one thread each (tests/conftest.py), on two cores: with two the suite
# still left a quarter of the CPU idle, waiting on dvc, servers and the browser
# (benchmarks/notes/testing.md#2026-12-03-three-workers-on-two-cores). worksteal: a worker that runs
# out of tests takes the back of another's queue (tests/conftest.py orders the queues for it):
# the last minute no longer runs on one worker
# (benchmarks/notes/testing.md#2026-12-05-twenty-second-session-the-last-minute-on-one-worker).
test: venv
	python -m pytest -q -m "not slow" -n 3 --dist worksteal --durations=15 tests

# The slow tier: the default params trained for real (minutes; `make repro` does the same and
# tests/test_committed_results.py checks its committed results in `make test`).
test-slow: venv
	python -m pytest -q -m slow tests

# The edit-run loop: unit tests and the API through TestClient; no dvc end to end, no browser,
# no server process, no Python started apart, no accuracy over hundreds of images (the tiers are
# pytest markers: pytest.ini).
test-fast: venv
	python -m pytest -q -m "not e2e and not browser and not server and not process and not slow and not bulk" -n 2 tests

# The page template of `dvc plots show` / `dvc plots diff` (.dvc/config's plots.html_template):
# vega, vega-lite and vega-embed inlined from the installed vl-convert-python, so the charts
# render with no network. Part of the venv step: `make repro` and `make test` both make it.
$(PLOTS_TEMPLATE): $(VENV)/.installed tools/plots_page.py
	$(VENV)/bin/python -m tools.plots_page --out $@

.PHONY: plots
plots: venv
	dvc plots show

bench: venv
	python -m benchmarks.time_to_accuracy --device cpu --seeds 5

# The train stage on one process against two (torchrun), on this machine's CPU.
bench-nproc: venv
	python -m benchmarks.train_processes --nproc 1,2 --repeats 2

# The digit reader over HTTP, with the draw-a-digit page at http://$(HOST):$(PORT)/ (after `make repro`).
# RUNTIME=torch|onnx; unset, the default of digit_reader/runtimes.py (DEFAULT_RUNTIME).
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
serve: venv
	python -m digit_reader.serve --host $(HOST) --port $(PORT) --workers $(WORKERS) $(if $(RUNTIME),--runtime $(RUNTIME))

# CLIENTS concurrent clients on loopback for DURATION s against a server it starts with
# BENCH_WORKERS processes, one per core (or URL=http://... of a running one), once per runtime:
# RUNTIME=torch,onnx (unset: every runtime, the default first); IMAGE=number posts a 4-digit number
# whose digits touch instead of a drawn digit; ATTACK=N loads it again with N more clients posting a
# hostile PNG beside the honest ones; BATCH=N posts N images per request to /predict/batch; writes
# benchmarks/results/serve-<cpu kind>-<model>-<runtime>-<workers>w-<clients>c[-number][-batchN][-attackN].json.
CLIENTS ?= 16
DURATION ?= 10
BENCH_WORKERS ?= 2
bench-serve: venv
	python -m benchmarks.serve_load --clients $(CLIENTS) --seconds $(DURATION) --workers $(BENCH_WORKERS) $(if $(RUNTIME),--runtime $(RUNTIME)) $(if $(URL),--url $(URL)) $(if $(IMAGE),--image $(IMAGE)) $(if $(ATTACK),--attack $(ATTACK)) $(if $(BATCH),--batch $(BATCH))
