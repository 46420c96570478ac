# NomosX task runner. Every target creates the virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
QUESTION ?= Does vitamin D supplementation reduce the risk of fractures?
PYTEST_WORKERS ?= auto

.PHONY: help install demo test lint format typecheck bench bench-llm clean services browser \
	security lock secrets-baseline

help:
	@echo "make demo       set up, then write an offline brief on the bundled library"
	@echo "make test       set up, then lint, type-check, security checks and the tests with coverage"
	@echo "make lint       ruff and mypy only"
	@echo "make security   pip-audit, detect-secrets, ruff S rules, wheel/sdist build and install test"
	@echo "make lock       rewrite requirements.lock from the installed nomosx[dev]"
	@echo "make bench      benchmarks (bench/)"
	@echo "make bench-llm  LLM gateway overhead vs a direct SDK call and vs LiteLLM"

# dependencies at the versions of requirements.lock (constraints: a dependency that the lock
# lacks still installs, and the security stage's lock check then asks for `make lock`)
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip -c requirements.lock
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# re-resolve pyproject.toml's dependencies (keeping installed versions that still fit), then
# write the lock; to upgrade a package: .venv/bin/pip install -U NAME, then make lock
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python scripts/lock.py
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

# security checks, one summary line each (scripts/security.sh)
security: $(STAMP)
	VENV=$(VENV) bash scripts/security.sh

# rescan the files into .secrets.baseline (keeps the reviews), then review what is new
secrets-baseline: $(STAMP)
	git ls-files -z --cached --others --exclude-standard | grep -zvx .secrets.baseline \
		| xargs -0 $(BIN)/detect-secrets scan --baseline .secrets.baseline
	$(BIN)/detect-secrets audit .secrets.baseline

services:
	bash scripts/ensure-services.sh

# Debian's Chromium for the browser tests (tests/web): Playwright never downloads one
browser:
	bash scripts/ensure-browser.sh

test: lint security services browser
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
