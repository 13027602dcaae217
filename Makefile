# The project's interface: `make serve` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
PACKAGES := libs/contracts/src libs/runtime/src libs/cli/src services/gateway/src \
	services/orchestrator/src services/agent-runner/src services/ratelimit/src \
	services/audit/src tools/fake-provider/src

.PHONY: serve test lint format typecheck unit integration e2e sync clean deploy-tools bench browser

$(UV):
	@echo "installing uv into $(TOOLS)/ (first run only)"
	@$(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard */*/pyproject.toml)
	@$(UV) sync --frozen --all-packages --quiet
	@touch $@

sync: $(VENV)/.synced

serve: sync ## run the whole stack: API :8080, WebSocket :8766
	@exec $(VENV)/bin/aragora serve

test: sync lint typecheck deploy-tools browser ## the whole suite: lint, types, unit, integration, end-to-end
	@# unit and integration tests are parallel-safe (own ports, schemas, key prefixes);
	@# the tiers that start whole stacks and kill parts of them run one at a time.
	@$(VENV)/bin/pytest -q -p no:cacheprovider -n 2 tests/unit tests/integration
	@$(VENV)/bin/pytest -q -p no:cacheprovider --durations=15 tests/e2e tests/faults tests/deploy \
		tests/browser

browser: ## Debian's Chromium for tests/browser (apt, first run only; Playwright downloads none)
	@bash scripts/install-browser.sh

deploy-tools: $(UV) ## helm, kubectl and promtool for tests/deploy (into .tools/bin, first run only)
	@bash scripts/install-deploy-tools.sh

lint: sync
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

format: sync
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

typecheck: sync
	@$(VENV)/bin/mypy $(PACKAGES)

unit: sync
	@$(VENV)/bin/pytest -q tests/unit

integration: sync
	@$(VENV)/bin/pytest -q tests/integration

e2e: sync
	@$(VENV)/bin/pytest -q tests/e2e

bench: sync ## benchmarks (docs/benchmarks.md): all, or BENCH="overhead gateway"; FULL=1: issue sizes
	@$(VENV)/bin/python -m bench $(BENCH) $(if $(FULL),--full)

clean:
	rm -rf .aragora .pytest_cache .mypy_cache .ruff_cache
