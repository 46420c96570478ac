# NomosX task runner. Every target creates the virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
QUESTION ?= Does vitamin D supplementation reduce the risk of fractures?
PYTEST_WORKERS ?= auto

.PHONY: help install demo test lint format typecheck bench bench-llm clean services browser

help:
	@echo "make demo       set up, then write an offline brief on the bundled library"
	@echo "make test       set up, then lint, type-check and run the tests with coverage"
	@echo "make lint       ruff and mypy only"
	@echo "make bench      benchmarks (bench/)"
	@echo "make bench-llm  LLM gateway overhead vs a direct SDK call and vs LiteLLM"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nomosx brief "$(QUESTION)"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

services:
	bash scripts/ensure-services.sh

# Debian's Chromium for the browser tests (tests/web): Playwright never downloads one
browser:
	bash scripts/ensure-browser.sh

test: lint services browser
	$(BIN)/pytest -n $(PYTEST_WORKERS) --cov --cov-report=term --cov-fail-under=90

bench: $(STAMP)
	$(BIN)/python bench/brief_offline.py
	$(BIN)/python bench/cli_startup.py

# the LLM gateway benchmark measures LiteLLM as its peer: LiteLLM lives in a venv of its own
.venv-bench/.installed: pyproject.toml
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet --upgrade pip
	.venv-bench/bin/python -m pip install --quiet litellm -e .
	touch .venv-bench/.installed

bench-llm: .venv-bench/.installed
	.venv-bench/bin/python bench/llm_gateway.py

clean:
	rm -rf $(VENV) .venv-bench .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
