# The two commands of the README: `make demo` (the lab of the seed page) and `make test`.
VENV := .venv/bin
PYTEST := $(VENV)/python -m pytest

# `lint` is part of `test`: the package layering (import-linter contracts in pyproject.toml) and ruff, in about a second.
.PHONY: setup demo down lint test test-unit test-api test-pg test-functional test-fullstack test-acceptance \
        bench bench-api bench-worst bench-agent bench-vm conformance

setup:
	@scripts/setup.sh

demo: setup
	$(VENV)/neutrino up

down:
	$(VENV)/neutrino down

lint: setup
	$(VENV)/lint-imports --no-cache
	$(VENV)/ruff check --no-cache src tests bench

test: setup lint
	$(PYTEST) -q tests/unit tests/api tests/functional tests/fullstack tests/acceptance
	$(MAKE) --no-print-directory test-pg

test-unit: setup
	$(PYTEST) -q tests/unit

test-api: setup
	$(PYTEST) -q tests/api

# The API core again on PostgreSQL (Debian's package), each test in a fresh database.
test-pg: setup
	url=$$(scripts/postgres.sh start) && NEUTRINO_TEST_PG_URL=$$url $(PYTEST) -q tests/api/test_networks.py \
	  tests/api/test_ports.py tests/api/test_watch.py; rc=$$?; scripts/postgres.sh stop; exit $$rc

test-functional: setup
	$(PYTEST) -q tests/functional

test-fullstack: setup
	$(PYTEST) -q tests/fullstack

test-acceptance: setup
	$(PYTEST) -q tests/acceptance

bench: bench-api bench-worst bench-agent bench-vm

bench-api: setup
	$(VENV)/python bench/api.py

bench-worst: setup
	$(VENV)/python bench/worst.py

bench-agent: setup
	$(VENV)/python bench/agent.py

bench-vm: setup
	$(VENV)/python bench/vm.py

# Upstream's network API tests (tempest + neutron-tempest-plugin, own venv) against a throwaway lab; not in `test`.
conformance: setup
	scripts/conformance.sh
