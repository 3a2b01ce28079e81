# One entry point for people and CI: `make demo` shows tracebaton at work on the demo shop,
# `make serve` runs it, `make test` tests it.
# Each target creates .venv and installs what it needs on first use.

PYTHON ?= python3
# Bytecode is kept: the suite starts hundreds of Python processes (servers, services under
# test, pytester runs), and each would compile tracebaton's sources again without it.
unexport PYTHONDONTWRITEBYTECODE
# Two workers suit a 2-core machine; the heavy tests share one of them (xdist_group "heavy").
TEST_WORKERS ?= 2
VENV := .venv
BIN := $(VENV)/bin
# Strict editable install: a link tree that mypy can read; re-made when files come or go.
SOURCES := $(shell find core collector assertions api dashboards demo -type f \( -name '*.py' -o -path 'dashboards/static/*' -o -path 'demo/flows/*' \) 2>/dev/null | sort)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-10)-$(shell echo $(SOURCES) | sha1sum | cut -c1-10)

.PHONY: install demo serve test test-slow bench lint typecheck node-deps wheel-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,demo]' --config-settings editable_mode=strict
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/tracebaton demo

serve: install
	$(BIN)/tracebaton serve

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy -p tracebaton

# The interop tests' Node.js service (OpenTelemetry JS SDK), from its lock file; without npm
# those tests skip and say why (under CI they fail instead: .ci/run checks for npm first).
NODE_DEPS := tests/interop/node/node_modules/.package-lock.json

$(NODE_DEPS): tests/interop/node/package-lock.json
	npm ci --prefix tests/interop/node --no-audit --no-fund --loglevel=error

node-deps:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(NODE_DEPS); \
	else echo "npm not found: the Node.js interop tests will be skipped"; fi

test: lint typecheck node-deps
	$(BIN)/pytest -n $(TEST_WORKERS)

test-slow: install
	$(BIN)/pytest -m slow

bench: install
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_verdict.py
	$(BIN)/python benchmarks/bench_dashboard.py
	$(BIN)/python benchmarks/bench_service_map.py
	$(BIN)/python benchmarks/bench_server_start.py
	$(BIN)/python benchmarks/bench_trace_fetch.py
	$(BIN)/python benchmarks/bench_file_writes.py

# The wheel in a clean virtual environment, imported from outside the repository.
wheel-check: install
	rm -rf dist build/wheel-venv
	$(BIN)/python -m build --wheel --outdir dist . >/dev/null
	$(PYTHON) -m venv build/wheel-venv
	build/wheel-venv/bin/python -m pip install -q dist/*.whl mypy types-protobuf types-PyYAML pytest
	cd /tmp && $(CURDIR)/build/wheel-venv/bin/python -c "import tracebaton, tracebaton.collector, \
		tracebaton.assertions, tracebaton.api, tracebaton.dashboards, tracebaton.demo; \
		assert tracebaton.__file__.startswith('$(CURDIR)/build/wheel-venv'), tracebaton.__file__; \
		print('wheel imports from', tracebaton.__file__)"
	# without the demo extra, `tracebaton demo` says what to install, in one line
	cd /tmp && ! $(CURDIR)/build/wheel-venv/bin/tracebaton demo --check-only 2>build-demo.err; \
		grep -q "pip install 'tracebaton\[demo\]'" build-demo.err && rm build-demo.err
	# the demo's instrumentations, for mypy over the whole package
	build/wheel-venv/bin/python -m pip install -q "$$(ls dist/*.whl)[demo]"
	cd /tmp && $(CURDIR)/build/wheel-venv/bin/mypy -p tracebaton --config-file $(CURDIR)/pyproject.toml
	cd /tmp && $(CURDIR)/build/wheel-venv/bin/tracebaton --help >/dev/null
	cd /tmp && $(CURDIR)/build/wheel-venv/bin/python -c "from tracebaton.demo import load_flow_spec; \
		print('demo flow specs in the wheel:', load_flow_spec('checkout').name, load_flow_spec('oversell').name)"

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
