# chatquota: `make run` serves it, `make test` tests it, `make bench` measures it.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app chatquota

.PHONY: run test bench venv clean

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

bench: venv
	sh bench/ensure_wrk.sh
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache
