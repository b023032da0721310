# genesis: every target creates the virtualenv it needs; nothing but python3 is assumed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export GENESIS_DB ?= genesis.db

.PHONY: help venv install test demo paper-demo run migrate clean bench quality chaos

help:
	@echo "make demo     set up, then run a TWAP on the embedded simulated venue (under a minute)"
	@echo "make test     set up, then run the test suite"
	@echo "make paper-demo  a TWAP through the real ccxt client against the local paper exchange"
	@echo "make run      the daemon in the foreground on the simulated venue"
	@echo "make bench    speed and memory figures side by side with their references"
	@echo "make quality  VWAP vs TWAP tracking study on the shared candles (long)"
	@echo "make chaos    50+ SIGKILLs of the daemon against a faulty paper exchange, then exactly-once checks (~6 min)"
	@echo "make migrate  alembic upgrade head on \$$GENESIS_DB (default ./genesis.db)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -rs

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

paper-demo: $(STAMP)
	$(BIN)/python -m genesis.paper.demo

run: $(STAMP)
	$(BIN)/genesis run --venue sim

migrate: $(STAMP)
	$(BIN)/genesis db upgrade --db $(GENESIS_DB)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo.db demo.db-* demo.pid demo.log paper-demo* chaos-run

bench: $(STAMP)
	$(BIN)/python bench/run.py

quality: $(STAMP)
	$(BIN)/python scripts/quality.py

chaos: $(STAMP)
	$(BIN)/python scripts/chaos.py
