"""Shared test set-up: everything offline, real components, small models built locally."""

from __future__ import annotations

import os

# Set before any Hugging Face import: hub look-ups would otherwise retry for ~24 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from polyqa import paths  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
XQUAD_R_DIR = paths.data_dir() / "xquad-r"  # POLYQA_DATA_DIR: the LAReQA release, read in place

pytest_plugins = ["fixtures_translate"]
# Small corpora in the corpus contract (built from XQuAD-R) for training tests.
pytest_plugins = [*pytest_plugins, "corpus_fixtures"]


@pytest.fixture(scope="session")
def xquad_r_dir() -> Path:
    """XQuAD-R of the LAReQA release (read in place, never copied into the repo)."""
    if not (XQUAD_R_DIR / "en.json").exists():
        pytest.fail(f"XQuAD-R data not found at {XQUAD_R_DIR}; set POLYQA_DATA_DIR to the LAReQA release")
    return XQUAD_R_DIR


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server and database for every flow test that asks for it.

    Starting one is the slow part of a flow test (tens of seconds on a busy
    2-core machine), so the tests share it.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
