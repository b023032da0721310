# genesis: every target creates the virtualenv it needs; nothing but python3 is assumed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export GENESIS_DB ?= genesis.db

.PHONY: help venv install test browser-test demo paper-demo run migrate clean bench bench-parents quality chaos chaos-ha wheel

help:
	@echo "make demo     set up, then run a TWAP on the embedded simulated venue (under a minute)"
	@echo "make test     set up, then run the test suite"
	@echo "make browser-test  the web dashboard in headless Chromium against a live daemon (installs chromium, playwright)"
	@echo "make paper-demo  a TWAP through the real ccxt client against the local paper exchange"
	@echo "make run      the daemon in the foreground on the simulated venue"
	@echo "make bench    speed and memory figures side by side with their references"
	@echo "make bench-parents  100, 300 and 1,000 TWAP parents on one paper-exchange account (~12 min)"
	@echo "make quality  VWAP vs TWAP tracking study on the shared candles (long)"
	@echo "make chaos    50+ SIGKILLs of the daemon against a faulty paper exchange, then exactly-once checks (~6 min)"
	@echo "make chaos-ha three daemons on one PostgreSQL, the leader SIGKILLed/SIGSTOPped 30 times, exchange-record checks"
	@echo "make migrate  alembic upgrade head on \$$GENESIS_DB (default ./genesis.db)"
	@echo "make wheel    build dist/genesis-<version>-py3-none-any.whl (what a server installs: docs/systemd.md)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv install: $(STAMP)

# two workers (this project's machine has 2 CPUs); the daemon-process tests share one of them,
# one at a time (tests/conftest.py). TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -rs -n $(TEST_WORKERS) --dist loadgroup

# Debian's chromium (never `playwright install`: it downloads a browser build); Playwright from
# the [browser] extra drives it. Needs root or sudo for apt-get when chromium is missing.
CHROMIUM ?= /usr/bin/chromium
browser-test: $(STAMP)
	@test -x $(CHROMIUM) || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	$(BIN)/python -c 'import playwright' 2>/dev/null || $(BIN)/pip install --quiet -e '.[test,browser]'
	GENESIS_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -m browser tests/test_dashboard_browser.py

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

paper-demo: $(STAMP)
	$(BIN)/python -m genesis.paper.demo

run: $(STAMP)
	$(BIN)/genesis run --venue sim

migrate: $(STAMP)
	$(BIN)/genesis db upgrade --db $(GENESIS_DB)

wheel: $(STAMP)
	$(BIN)/pip wheel --no-deps --no-build-isolation -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo.db demo.db-* demo.pid demo.log paper-demo* chaos-run chaos-ha-run

bench: $(STAMP)
	$(BIN)/python -c 'import eventsourcing.postgres' 2>/dev/null || $(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py

bench-parents: $(STAMP)
	$(BIN)/python -m bench.parents_bench 100 300 1000

quality: $(STAMP)
	$(BIN)/python scripts/quality.py

chaos: $(STAMP)
	$(BIN)/python scripts/chaos.py

chaos-ha: $(STAMP)
	$(BIN)/python scripts/chaos_ha.py
