# Every target creates the virtualenv it needs; nothing has to be installed by hand first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format check-generated clean

# The example tool plug-in, installed beside the App: the tests prove an installed plug-in
# reaches `idp-copilot tools list` and the agent.
EXAMPLE_PLUGIN := examples/idp-example-tools

$(STAMP): pyproject.toml $(EXAMPLE_PLUGIN)/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps -e $(EXAMPLE_PLUGIN)
	touch $(STAMP)

demo: $(STAMP)
	@sh scripts/ensure-redis.sh
	$(BIN)/idp-copilot demo

test: $(STAMP)
	@sh scripts/ensure-redis.sh
	@sh scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest
	sh scripts/check-generated.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# Template set folders to render and check besides the built-in set; default: every folder
# under examples/template-sets/ (make check-generated TEMPLATE_SETS="path/to/set ...").
TEMPLATE_SETS ?=

check-generated: $(STAMP)
	sh scripts/check-generated.sh $(TEMPLATE_SETS)
