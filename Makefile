# Architect: `make run` starts the gateway on the embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pytest workers (pytest-xdist); each test file runs whole on one of them
TEST_WORKERS ?= 2

.PHONY: run test install agents lint lint-js format-js typecheck imports unit integration acceptance lock bench-gateway clean

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

# The layering rule of docs/architecture.md (import-linter contracts in pyproject.toml).
imports: install
	$(BIN)/lint-imports

# Browser tests drive Debian's chromium (/usr/bin/chromium) with Playwright and check accessibility
# with axe-core from npm; eslint and prettier check the dashboard's JavaScript and CSS. All test-only,
# pinned in tests/browser/package-lock.json, installed into tests/browser/node_modules. Under CI=true
# a missing npm fails the build instead of skipping.
BROWSER_STAMP := tests/browser/node_modules/.installed
$(BROWSER_STAMP): tests/browser/package-lock.json
	@if command -v npm >/dev/null; then cd tests/browser && npm ci --no-audit --no-fund --silent && touch node_modules/.installed; \
	 elif [ "$$CI" = "true" ]; then echo "CI=true but npm is not installed (apt-get install -y npm)" >&2; exit 1; \
	 else echo "npm not found: browser accessibility checks and the JavaScript lint will be skipped"; fi

JS_BIN := tests/browser/node_modules/.bin
JS_FILES := "src/architect/web/static/**/*.{js,css}" tests/browser/eslint.config.js

lint-js: $(BROWSER_STAMP)
	@if [ -x $(JS_BIN)/eslint ]; then \
	   $(JS_BIN)/eslint --max-warnings 0 --config tests/browser/eslint.config.js src/architect/web/static && \
	   $(JS_BIN)/prettier --config tests/browser/prettier.config.json --check $(JS_FILES); \
	 elif [ "$$CI" = "true" ]; then echo "CI=true but eslint is not installed (npm ci in tests/browser)" >&2; exit 1; \
	 else echo "eslint not installed (npm not found): JavaScript lint skipped"; fi

format-js: $(BROWSER_STAMP)
	$(JS_BIN)/prettier --config tests/browser/prettier.config.json --write $(JS_FILES)

# Coding-agent CLIs for tests/acceptance/agents, test-only: Claude Code and Codex CLI from npm (pinned in
# tests/agents/package-lock.json; each ships a native binary in a platform package, checked to run), and
# Aider in a virtualenv of its own, made by uv (it pins every dependency exactly, so its version pins them
# all).
# Under CI=true a missing npm fails the build; elsewhere the tests that need the client skip.
AGENTS_STAMP := tests/agents/node_modules/.installed
$(AGENTS_STAMP): tests/agents/package-lock.json
	@if command -v npm >/dev/null; then cd tests/agents && npm ci --no-audit --no-fund --silent && \
	   node_modules/.bin/claude --version >/dev/null && node_modules/.bin/codex --version >/dev/null && \
	   touch node_modules/.installed; \
	 elif [ "$$CI" = "true" ]; then echo "CI=true but npm is not installed (apt-get install -y npm)" >&2; exit 1; \
	 else echo "npm not found: the Claude Code and Codex CLI tests will be skipped"; fi

AIDER_VERSION := 0.86.2
AIDER_VENV    := tests/agents/.aider-venv
AIDER_STAMP   := $(AIDER_VENV)/.installed-$(AIDER_VERSION)
$(AIDER_STAMP): | $(STAMP)
	rm -rf $(AIDER_VENV)
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv venv -q --python $(PYTHON) $(AIDER_VENV)
	$(BIN)/uv pip install -q --python $(AIDER_VENV)/bin/python aider-chat==$(AIDER_VERSION)
	$(AIDER_VENV)/bin/aider --version >/dev/null
	touch $@

agents: $(AGENTS_STAMP) $(AIDER_STAMP)

test: install $(BROWSER_STAMP) lint-js agents
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=25

unit: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile tests/unit
integration: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile tests/integration
acceptance: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile tests/acceptance

# Re-resolve the lock file after changing dependencies in pyproject.toml.
lock: | $(BIN)/python
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements-dev.lock

bench-gateway: install
	bash bench/gateway/reference.sh 3 --conc "1 16 64" --duration 8

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
