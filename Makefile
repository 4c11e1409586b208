# gradlab: two commands for a new user.
#   make run   check every registered derivation (three witnesses) and print the table
#   make test  the whole test suite
# Each creates .venv and installs what it needs when missing (only Python 3.11+ is required).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gradlab-installed

.PHONY: run test bench lint format clean venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,plot,dev,pandas,notebook,progress]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/gradlab check

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	-$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check gradlab tests benchmarks experiments papers
	$(BIN)/ruff format --check gradlab tests benchmarks experiments papers
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format gradlab tests benchmarks experiments papers

clean:
	rm -rf $(VENV) .pytest_cache results
