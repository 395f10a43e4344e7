# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv in the repo root and install kaiyuan with its test extras first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kaiyuan-installed

.PHONY: demo test bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || \
		(echo "installing a C compiler for the cpu backend"; apt-get update -qq && apt-get install -y -qq gcc libgomp1)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/kernels.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
