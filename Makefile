# The two commands of the README's Quick start, each creating its own virtual environment:
#   make demo   install, then pack the example dataset in examples/
#   make test   install, then lint, type-check and run the test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" bash examples/demo.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n auto

clean:
	rm -rf $(VENV) demo-out
