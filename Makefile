# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install browser shclient lint docs docs-check test test-fast test-compat demo bench reliability emulator clean lock lock-compat

$(STAMP): pyproject.toml emulator/pyproject.toml .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q 'uv>=0.4'
	# --compile-bytecode: this machine exports PYTHONDONTWRITEBYTECODE=1, and every airflow process
	# would otherwise start in ~4 s instead of ~1.7 s.
	# The emulator is its own distribution (emulator/), installed from this checkout.
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -c .ci/constraints.txt \
		-e ./emulator -e '.[test]'
	touch $@

install: $(STAMP)

## Headless Chromium for the UI test (tests/e2e/test_ui_browser.py): Debian's package, which
## Playwright (a PyPI package of the test extra) drives; Playwright's own browser download is not
## used (it is no package registry). Nothing to do when one is there already or UI_BROWSER names one.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if [ -n "$$UI_BROWSER" ] || command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null; \
	then echo "browser: $${UI_BROWSER:-$$(command -v chromium-headless-shell || command -v chromium)}"; \
	else $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
		--no-install-recommends chromium-headless-shell >/dev/null && echo "browser: installed chromium-headless-shell"; fi

## The official cuopt-sh-client 26.10.0, unmodified, in its own virtualenv: it pins msgpack==1.2.1,
## which clashes with the main environment. tests/emulator/test_cuopt_server_conformance.py runs it
## (and builds it through this target when it is missing).
SHCLIENT       := .venv-shclient
SHCLIENT_STAMP := $(SHCLIENT)/.installed-stamp

## Needs only uv from the main venv: the test calls this target while that venv runs pytest, so it
## must not reinstall the main venv (an order-only $(STAMP) would when pyproject.toml is newer).
$(SHCLIENT_STAMP): .ci/shclient-constraints.txt
	test -x $(BIN)/uv || $(MAKE) install
	$(BIN)/uv venv -q --allow-existing --python $(BIN)/python $(SHCLIENT)
	$(BIN)/uv pip install -q --python $(SHCLIENT)/bin/python -r .ci/shclient-constraints.txt
	touch $@

shclient: $(SHCLIENT_STAMP)

## ruff: lint (incl. blocking calls in async code) and formatting, as configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The documentation site (docs/, README.md as its home page, an API reference page generated from the
## docstrings of every public module of airflow_provider; see mkdocs.yml) into site/; warnings are
## printed, `make docs-check` fails on them.
## NO_MKDOCS_2_WARNING: mkdocs-material's banner about MkDocs 2, which the pins in pyproject.toml exclude.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build

## The same build in strict mode into a throw-away folder: a broken link or anchor, a page missing from
## the nav, an API reference that does not resolve or a docstring griffe cannot parse fails it.
## No --quiet: it drops warnings before --strict counts them, and the build then passes.
docs-check: $(STAMP)
	out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
		NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir "$$out"

## The whole suite: lint, the strict docs build, unit, emulator conformance (official nextmv SDK), S3 via
## moto server, memory bounds, end-to-end runs on a real Airflow 3.3 stack, and its UI in headless Chromium.
test: lint docs-check browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Everything except the real-Airflow end-to-end tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

## Runs the example pipelines through a real Airflow stack against the local emulator.
demo: $(STAMP)
	$(BIN)/python -m optimization_emulator.testing.demo

## Re-runs the fault-injection scenarios and rewrites the counts table of docs/reliability.md.
reliability: $(STAMP)
	RELIABILITY_DOC=1 $(BIN)/python -m pytest -q tests/hooks/test_nextmv_faults.py tests/hooks/test_cuopt_faults.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

## Starts the emulator in the foreground on 127.0.0.1:8765 (Ctrl-C stops it).
emulator: $(STAMP)
	$(BIN)/python -m optimization_emulator --host 127.0.0.1 --port 8765

## Re-pins .ci/constraints.txt from pyproject.toml and emulator/pyproject.toml (existing pins are kept
## where they still fit; `rm .ci/constraints.txt` first to move everything to the newest releases).
lock:
	printf -- '-e ./emulator[s3]\n-e .[test,emulator,s3]\n' | $(BIN)/uv pip compile - -o .ci/constraints.txt \
		--no-emit-package airflow-provider-optimization --no-emit-package airflow-provider-optimization-emulator

## ---- The oldest supported Airflow: the low end of pyproject.toml's apache-airflow range ---------
COMPAT_AIRFLOW := 3.1.8
# PyPI published apache-airflow 3.1.8 at 2026-03-11T19:28Z. Resolving Airflow as of the next day stands
# in for its official constraints file (constraints-3.1.8, on GitHub, which this machine cannot
# reach): the libraries Airflow was released and tested with, not today's.
COMPAT_AIRFLOW_DATE := 2026-03-12T00:00:00Z
COMPAT_VENV  := .venv-compat
COMPAT_BIN   := $(COMPAT_VENV)/bin
COMPAT_STAMP := $(COMPAT_VENV)/.installed-stamp
COMPAT_LOCK  := .ci/constraints-compat.txt
# Only what the end-to-end tests need (no linters, SDKs or moto): the fewer pins, the fewer clashes.
COMPAT_DEPS  := 'apache-airflow==$(COMPAT_AIRFLOW)' 'pytest>=8' 'pytest-asyncio>=0.23' 'pytest-timeout>=2.3'
COMPAT_TESTS := tests/e2e/test_example_nextmv.py tests/e2e/test_example_cuopt.py

$(COMPAT_STAMP): $(STAMP) pyproject.toml emulator/pyproject.toml $(COMPAT_LOCK)
	test -x $(COMPAT_BIN)/python || $(BIN)/uv venv -q -p $(PYTHON) $(COMPAT_VENV)
	$(BIN)/uv pip install --python $(COMPAT_BIN)/python --compile-bytecode -c $(COMPAT_LOCK) \
		-e ./emulator -e . $(COMPAT_DEPS)
	$(COMPAT_BIN)/python -c "import airflow, sys; sys.exit(airflow.__version__ != '$(COMPAT_AIRFLOW)')"
	touch $@

## The example DAGs end to end (real stack, real emulator) on the oldest supported Airflow, in its
## own venv (.venv-compat) pinned by .ci/constraints-compat.txt. `make test` covers the newest.
test-compat: $(COMPAT_STAMP)
	$(COMPAT_BIN)/python -m pytest $(COMPAT_TESTS) $(PYTEST_ARGS)

## Re-pins .ci/constraints-compat.txt in two steps: Airflow $(COMPAT_AIRFLOW) as released (everything
## resolved as of its release date), then the provider, emulator and pytest on top, keeping those pins
## where they still fit (as a user's `pip install` on an Airflow installed with its constraints would).
lock-compat: $(STAMP)
	rm -f $(COMPAT_LOCK)
	printf '%s\n' 'apache-airflow==$(COMPAT_AIRFLOW)' | $(BIN)/uv pip compile -q - --python-version 3.11 \
		--exclude-newer $(COMPAT_AIRFLOW_DATE) -o $(COMPAT_LOCK)
	printf '%s\n' '-e ./emulator' '-e .' $(COMPAT_DEPS) | $(BIN)/uv pip compile - --python-version 3.11 \
		-o $(COMPAT_LOCK) --no-emit-package airflow-provider-optimization \
		--no-emit-package airflow-provider-optimization-emulator

clean:
	rm -rf $(VENV) $(COMPAT_VENV) $(SHCLIENT) .demo .bench .pytest_cache site
