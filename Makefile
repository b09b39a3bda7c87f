# The two commands a fresh machine needs: `make demo` (the main job) and `make test` (the tests).
# Each installs into .venv what it needs: `make demo` the demo extra, `make test` the dev extra.
PYTHON ?= python3
VENV   := .venv
HASH   := $(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test bench components

demo: $(VENV)/.installed-demo-$(HASH)
	$(VENV)/bin/otel-ml demo

test: $(VENV)/.installed-dev-$(HASH) components
	$(VENV)/bin/python -m pytest

components:
	scripts/e2e-components.sh

bench: $(VENV)/.installed-dev-$(HASH)
	for b in benchmarks/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

# .venv/.installed-<extra>-<hash of pyproject.toml>: reinstalled when pyproject.toml changes.
$(VENV)/.installed-%-$(HASH): | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[$*]'
	rm -f $(VENV)/.installed-$*-*
	touch $@
