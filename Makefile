# chatquota: `make run` serves it, `make test` tests it, `make bench` measures it.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
CHATQUOTA := $(VENV)/bin/chatquota
# `make test-pg` runs the suite on this PostgreSQL database (created if missing, emptied).
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/chatquota_test

.PHONY: run test test-pg bench venv dev-venv clean

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

run: venv
	$(CHATQUOTA) init-db
	$(CHATQUOTA) ensure-admin
	$(VENV)/bin/gunicorn wsgi:app

test: dev-venv
	$(PY) -m pytest -W error $(PYTEST_ARGS)

test-pg: dev-venv
	CHATQUOTA_TEST_DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -W error $(PYTEST_ARGS)

bench: venv
	sh bench/ensure_wrk.sh
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache chatquota.egg-info
