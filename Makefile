PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install images demo demo-train test stress lint bench serve up down clean

install: $(BIN)/rlef

$(BIN)/rlef: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $@

images:
	bash docker/build.sh

demo: install
	$(BIN)/rlef demo

demo-train: install
	$(BIN)/rlef demo-train

test: install
	$(BIN)/pytest -q

# full-size load (50 clients x 60 s) and soak (10,000 jobs); CI runs them smaller
stress: install
	RLEF_LOAD_CLIENTS=50 RLEF_LOAD_SECONDS=60 RLEF_SOAK_JOBS=10000 \
		$(BIN)/pytest -q -s tests/integration/test_load.py tests/integration/test_soak.py

lint: install
	$(BIN)/ruff check service trainer tests bench
	$(BIN)/mypy service trainer

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info

# docker compose stack (redis + api + workers); RLEF_REDIS_IMAGE defaults to the locally
# built service image, which carries redis-server, so no registry is needed.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
export RLEF_REDIS_IMAGE ?= rlef-service:latest
WORKERS ?= 2

up:
	$(COMPOSE) up -d --scale worker=$(WORKERS)

down:
	$(COMPOSE) down -t 60
