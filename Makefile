# The two commands: `make run` starts the whole product on this machine, `make test` runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

$(VENV)/.installed-embedded: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $@ $(VENV)/.installed-embedded

run: $(VENV)/.installed-embedded
	$(BIN)/meetrec up

test: $(VENV)/.installed-dev
	$(BIN)/python -m tests.browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check app workers webhooks tests bench examples
	$(BIN)/ruff format --check app workers webhooks tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/api.py --seconds 3 --rounds 3 --rate 200
	$(BIN)/python bench/finalize.py
	$(BIN)/python bench/finish.py
	$(BIN)/python bench/frames.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/posthog.py
	$(BIN)/python bench/capture.py
	$(BIN)/python bench/density.py

clean:
	rm -rf $(VENV) .pytest_cache
