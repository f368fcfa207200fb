# Peerline: `make run` serves it, `make test` runs every test. Both set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install migrate superuser bench clean

# scripts/check_python.sh first: Debian and Ubuntu ship venv's ensurepip separately
# (python3-venv), and without it `python3 -m venv` fails half way with a cryptic message.
$(BIN)/python:
	@sh scripts/check_python.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run

.env:
	$(BIN)/python scripts/make_local_env.py

migrate: install .env
	$(BIN)/python manage.py migrate --noinput

run: migrate
	@echo ""
	@echo "  Peerline is running on http://$(HOST):$(PORT)/   (Ctrl-C stops it)"
	@echo ""
	$(BIN)/daphne -b $(HOST) -p $(PORT) config.asgi:application

superuser: migrate
	$(BIN)/python manage.py createsuperuser

test: $(VENV)/.installed-test
	bash scripts/run_tests.sh

bench: $(VENV)/.installed-test
	$(BIN)/python bench/relay_latency.py

clean:
	rm -rf $(VENV) staticfiles test-results .pytest_cache test-db.sqlite3*
