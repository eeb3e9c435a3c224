# Docket. `make run` runs it, `make test` passes its tests; both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Reinstalls only when pyproject.toml changes; otherwise the setup step is a no-op.
STAMP := $(VENV)/.installed-from-pyproject

# The test OpenID Connect provider (npm oidc-provider), reinstalled when its lock file changes.
OIDC_PROVIDER := tests/identity/oidc_provider
NODE_STAMP := $(OIDC_PROVIDER)/node_modules/.installed-from-lock

.PHONY: venv run test lint stop bench node-deps

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: venv
	$(PY) -m docket.run

$(NODE_STAMP): $(OIDC_PROVIDER)/package-lock.json
	npm ci --prefix $(OIDC_PROVIDER) --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

node-deps: $(NODE_STAMP)

test: venv node-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

stop:
	@if [ -x $(PY) ]; then $(PY) -m docket.embedded stop; else echo "no $(VENV): nothing to stop"; fi

# `make bench` is the full suite (1,000,000 cases, ~15 min); `make bench BENCH_ARGS="--scale 0.1"` a quick one.
bench: venv
	$(PY) -m bench $(BENCH_ARGS)
