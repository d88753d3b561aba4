# labelwise — the two commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Label Studio (tests/labelstudio/ run a real server) clashes with labelwise's pins: own venv.
LS_VENV := .venv-ls
LS_STAMP := $(LS_VENV)/.installed

.PHONY: run test bench lint format clean chromium screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0  # the CPU build, before the [embeddings] extra
	$(BIN)/pip install --quiet -e '.[test,peers,ray,embeddings]'
	$(BIN)/pip install --quiet --no-deps crowd-kit==1.4.2  # tests only; its deps: see the test extra
	touch $(STAMP)

$(LS_STAMP):
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet --upgrade pip
	$(LS_VENV)/bin/pip install --quiet label-studio==1.23.2 label-studio-sdk==2.1.2
	$(PYTHON) tests/labelstudio/ls_server.py --init  # migrated database the tests copy
	touch $(LS_STAMP)

run: $(STAMP)
	$(BIN)/labelwise demo
	$(BIN)/labelwise serve --demo

test: $(STAMP) $(LS_STAMP) chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The browser tests drive Debian's Chromium (playwright's own download is never used).
chromium:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# Refresh docs/screenshots/ from the browser tests (a plain test run leaves them alone).
screenshots: $(STAMP) chromium
	LABELWISE_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser/test_pages.py

bench: $(STAMP)
	$(BIN)/python benchmarks/select_speed.py --repeats 3
	$(BIN)/python benchmarks/scale.py  # writes and deletes a 7.7 GB pool under /tmp
	$(BIN)/python benchmarks/service_scale.py  # 10k vs 1M-item project: import, round, claims
	$(BIN)/python benchmarks/progress_history.py  # /progress of 300k labelled items, 330k answers
	$(BIN)/python benchmarks/data_quality.py --seeds 20 --jobs 2 --datasets digits,fine_food
	$(BIN)/python benchmarks/service_load.py --annotators 50 --duration 20 --tasks 5000 \
		--pool 100000 --batch-size 100 --cycles 2 --think-time 0,2 --server-workers 1,2

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) $(LS_VENV) build dist .pytest_cache
