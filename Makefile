PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo run cluster bench lint clean faq-examples

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m bot.demo

run: $(STAMP)
	$(BIN)/rosterbot serve $(RUN_ARGS)

# 2 bot replicas + 2 workers on the local PostgreSQL (docs/deploy.md); Ctrl-C stops them all
cluster: $(STAMP)
	$(BIN)/python -m bot.cluster

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# faq/examples.yaml from the tuning question batches (tests/test_faq_examples.py checks it is current)
faq-examples: $(STAMP)
	$(BIN)/python bench/make_faq_examples.py

lint: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[lint]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var *.egg-info .pytest_cache
