# `make run` starts the bot, `make test` runs ruff + mypy + pytest; both build the venv first.
# The venv uses the newest supported Python found (on PATH, else installed by pyenv);
# `make test PY=3.11` picks a version, `PYTHON=/path/to/python` an interpreter.
SUPPORTED_PYTHONS := 3.13 3.12 3.11
# CI runs the whole suite on the first of these and all but the end-to-end suites on the
# others, one venv each (.venv-3.13, .venv-3.11): see `ci` below.
CI_PYTHONS ?= 3.13 3.11
# The end-to-end suites drive real wandb processes and agents for minutes and hold no code
# of their own that differs between Pythons; running them once keeps CI within its budget.
CI_OTHER_ARGS ?= --ignore-glob='tests/test_e2e_*' --ignore=tests/slurm

# Print the path of a working pythonX.Y: pyenv's shims exist for versions that are not
# active and fail when run, so each candidate is run once before it is chosen.
python_for = $(shell for p in python$(1) $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(1)*/bin/python$(1); \
	do "$$p" -c '' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)

ifdef PY
PYTHON ?= $(call python_for,$(PY))
else
PYTHON ?= $(firstword $(foreach v,$(SUPPORTED_PYTHONS),$(call python_for,$(v))))
endif
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest venv ci bench clean demo

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python $(or $(PY),3.11-3.13) found: set PYTHON=/path/to/python3.x" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/wandb-telegram-bot run

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

# Lint, types and the whole suite on the first CI Python (with the slowest tests named);
# the suite but its end-to-end part on the others.
ci:
	$(MAKE) test PY=$(firstword $(CI_PYTHONS)) VENV=.venv-$(firstword $(CI_PYTHONS)) PYTEST_ARGS="--durations=20"
	$(foreach v,$(wordlist 2,9,$(CI_PYTHONS)),$(MAKE) pytest PY=$(v) VENV=.venv-$(v) PYTEST_ARGS="$(CI_OTHER_ARGS)" &&) true

# Both local servers, the bot, real training runs and a sweep; type commands, Ctrl-C stops it.
demo: $(STAMP)
	$(BIN)/python -m examples.demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf .venv .venv-3.* .mypy_cache .ruff_cache .pytest_cache
