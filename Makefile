# Architect: `make run` starts the gateway on the embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint typecheck unit integration acceptance lock bench-gateway clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Install exactly what the lock file pins (dev extras included), then the project itself, then place
# tiktoken's encoding files locally (checksums verified; nothing is downloaded at run time).
$(STAMP): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m architect.gateway.tokens
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/architect serve --example

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

# Browser tests drive Debian's chromium (/usr/bin/chromium) with Playwright and check accessibility
# with axe-core from npm (test-only, in tests/browser/node_modules).
BROWSER_STAMP := tests/browser/node_modules/.installed
$(BROWSER_STAMP): tests/browser/package-lock.json
	@if command -v npm >/dev/null; then cd tests/browser && npm ci --no-audit --no-fund --silent && touch node_modules/.installed; \
	 else echo "npm not found: browser accessibility checks will be skipped"; fi

test: install $(BROWSER_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider

unit: install
	$(BIN)/pytest -q tests/unit
integration: install
	$(BIN)/pytest -q tests/integration
acceptance: install
	$(BIN)/pytest -q tests/acceptance

# Re-resolve the lock file after changing dependencies in pyproject.toml.
lock: | $(BIN)/python
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements-dev.lock

bench-gateway: install
	bash bench/gateway/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
