# One venv at the repo root, every dependency pinned by constraints.txt.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install quickstart test bench clean-venv

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

bench: install
	$(PY) benchmarks/run.py

clean-venv:
	rm -rf $(VENV)
