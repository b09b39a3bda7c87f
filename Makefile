# The two commands a fresh machine needs: `make demo` (the main job) and `make test` (the tests).
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test bench components

demo: $(STAMP)
	$(VENV)/bin/otel-ml demo

test: $(STAMP) components
	$(VENV)/bin/python -m pytest

components:
	scripts/e2e-components.sh

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@
