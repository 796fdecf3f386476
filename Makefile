# FlowForge developer commands. `make demo` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help install demo test lint docs protos up clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[local,dev]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP) ## Create .venv (FlowForge with the local and dev extras) and node_modules (buf)

demo: $(STAMP) ## Run the sample data through the pipeline on the embedded stack
	$(BIN)/flowforge demo

test: lint ## Lint, then run the whole test suite (starts SeaweedFS and the services itself)
	$(BIN)/pytest $(PYTEST_ARGS)

up: $(STAMP) ## Keep the embedded stack running with a Prefect UI and the served deployment (Ctrl-C stops)
	$(BIN)/flowforge up

lint: $(STAMP) $(NODE_STAMP) ## ruff, ruff format --check, mypy, import contracts, buf lint, mkdocs --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy flowforge services orchestrator cli
	$(BIN)/lint-imports
	node_modules/.bin/buf lint
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs: $(STAMP) ## Regenerate docs/reference and .env.example from the code, then build the site into build/site
	$(BIN)/python -m cli.reference
	$(BIN)/python -m flowforge.envfile
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

protos: $(STAMP) ## Regenerate flowforge/v1 from protos/
	$(BIN)/python -m flowforge.protogen

clean: ## Remove the virtualenv and local state
	rm -rf $(VENV) node_modules .flowforge .pytest_cache
