# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install shclient lint test test-fast demo bench reliability emulator clean lock

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

## The whole suite: lint, unit, emulator conformance (official nextmv SDK), S3 via moto server, memory
## bounds, and end-to-end runs on a real Airflow 3.3 stack.
test: lint
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

clean:
	rm -rf $(VENV) $(SHCLIENT) .demo .bench .pytest_cache
