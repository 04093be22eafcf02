# chatquota: `make run` serves it, `make test` tests it, `make bench` measures it.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app chatquota
# `make test-pg` runs the suite on this PostgreSQL database (created if missing, emptied).
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/chatquota_test

.PHONY: run test test-pg bench venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: venv
	$(FLASK) init-db
	$(FLASK) ensure-admin
	$(VENV)/bin/gunicorn wsgi:app

test: venv
	$(PY) -m pytest -W error $(PYTEST_ARGS)

test-pg: venv
	CHATQUOTA_TEST_DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -W error $(PYTEST_ARGS)

bench: venv
	sh bench/ensure_wrk.sh
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache
