# One venv at the repo root, every dependency pinned by constraints.txt.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install quickstart test bench figures gpu-check clean-venv

install: $(STAMP)

# Re-runs only when the dependency pins or the package metadata change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

quickstart: install
	$(PY) train.py experiment=quickstart

test: install
	$(PY) -m pytest -n 2 -q

# Every figure printed, and written as JSON (keys: benchmarks/README.md); then the README's figures.
bench: install
	$(PY) benchmarks/run.py --json benchmarks/results/bench.json
	$(PY) benchmarks/figures.py

# README.md's and docs/figures.md's figures from benchmarks/results/ (bench.json, ci.json).
figures: install
	$(PY) benchmarks/figures.py

# On a CUDA machine: training MFU with DDP on every GPU, compile, inference latency, bf16 vs fp32.
gpu-check: install
	$(PY) benchmarks/gpu_check.py

clean-venv:
	rm -rf $(VENV)
