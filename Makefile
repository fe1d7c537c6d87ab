# Two commands for a fresh machine: `make run` (the whole DAG on the embedded default) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# torch's CPU wheel is pinned where the training/inference extras need it; the data stage needs none.

.PHONY: install run report test test-slow lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile profiles/local
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile profiles/local --report report.html

test: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -q

test-slow: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -q -m slow

lint: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --lint

clean:
	rm -rf results logs report.html .snakemake
