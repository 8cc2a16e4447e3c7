PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install setup images demo demo-train test stress lint bench up down clean

# .venv with everything (the trainer and the test tools); the demo needs only the service
install: $(VENV)/.installed-all

$(VENV)/.installed-all: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,dev]'
	# veRL's scoring and interaction modules, for the integration tests; its own
	# dependency list (ray, vllm, numpy<2, wandb...) is not needed for them
	$(BIN)/pip install -q --no-deps verl==0.7.1
	touch $@

$(VENV)/.installed-service: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

# everything the tests need (packages, dockerd + runsc, Redis, venv, images); only what is missing
setup:
	scripts/setup.sh

# rebuilt only when docker/, service/ or pyproject.toml changed (force: bash docker/build.sh)
images: install
	scripts/setup.sh images

demo:
	scripts/setup.sh demo_packages
	$(MAKE) -s $(VENV)/.installed-service
	$(BIN)/rlef-service demo

demo-train:
	scripts/setup.sh demo_packages venv
	$(BIN)/rlef demo-train

test: setup
	$(BIN)/pytest -q

# full-size load (50 clients x 60 s) and soak (10,000 jobs); CI runs them smaller
stress: setup
	RLEF_LOAD_CLIENTS=50 RLEF_LOAD_SECONDS=60 RLEF_SOAK_JOBS=10000 \
		$(BIN)/pytest -q -s tests/integration/test_load.py tests/integration/test_soak.py

LINTED := rlef_cli service trainer $(wildcard integrations)
lint: install
	$(BIN)/ruff check $(LINTED) tests bench
	$(BIN)/mypy $(LINTED)

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info

# docker compose stack (redis + api + workers); RLEF_REDIS_IMAGE defaults to the locally
# built service image, which carries redis-server, so no registry is needed.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
export RLEF_REDIS_IMAGE ?= rlef-service:latest
WORKERS ?= 2

up: images
	$(COMPOSE) up -d --scale worker=$(WORKERS)

down:
	$(COMPOSE) down -t 60
