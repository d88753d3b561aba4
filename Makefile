# labelwise — the two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint format clean chromium screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,peers]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/labelwise demo
	$(BIN)/labelwise serve --demo

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The browser tests drive Debian's Chromium (playwright's own download is never used).
chromium:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# Refresh docs/screenshots/ from the browser tests (a plain test run leaves them alone).
screenshots: $(STAMP) chromium
	LABELWISE_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser/test_pages.py

bench: $(STAMP)
	$(BIN)/python benchmarks/select_speed.py
	$(BIN)/python benchmarks/service_load.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) build dist .pytest_cache
