# The two commands of the README. Both work on a fresh machine with Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip
BIN = $(VENV)/bin

.PHONY: run test test-fast lint install install-dev bench image-check vendor-charts clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: install, then serve the dashboard on the shipped models at http://127.0.0.1:8000
run: install
	$(BIN)/deconv-arena serve

## make test: install with the dev extra, then lint and run the whole test suite (the slowest tests listed at the end)
test: install-dev lint
	$(BIN)/python -m pytest --durations=15

## make test-fast: everything but the slow, browser and cluster tests: the loop to run after every edit (~2 minutes)
test-fast: install-dev
	$(BIN)/python -m pytest -m "not slow and not browser and not cluster" --durations=10

## make lint: the formatter's and the linter's verdict, changing nothing
lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

bench: install-dev
	$(PIP) install -e '.[bench]'
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/train_step.py

## make image-check: build the Dockerfile with Podman and run the image (ready, generate, vote, healthcheck, SIGTERM)
image-check: install
	$(BIN)/python deploy/image_check.py

## make vendor-charts: fetch the charts' scripts again from npm (versions in app/static/vendor/VERSIONS.toml; then
## put the new sha256 there: tests/test_charts.py checks them)
vendor-charts:
	$(PYTHON) deploy/vendor_charts.py

clean:
	rm -rf $(VENV) .pytest_cache artifacts
