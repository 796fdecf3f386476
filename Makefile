# FlowForge developer commands. `make demo` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test lint protos up clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[local,dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install FlowForge with the local and dev extras

demo: $(STAMP) ## Run the sample data through the pipeline on the embedded stack
	$(BIN)/flowforge demo

test: $(STAMP) ## Lint, then run the whole test suite (starts SeaweedFS and the services itself)
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

up: $(STAMP) ## Keep the embedded stack running with a Prefect UI and the served deployment (Ctrl-C stops)
	$(BIN)/flowforge up

lint: $(STAMP) ## ruff check, ruff format --check and mypy on hand-written code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy flowforge services orchestrator

protos: $(STAMP) ## Regenerate flowforge/v1 from protos/
	$(BIN)/python -m flowforge.protogen

clean: ## Remove the virtualenv and local state
	rm -rf $(VENV) .flowforge .pytest_cache
