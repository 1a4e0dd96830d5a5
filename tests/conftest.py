"""Shared test set-up: everything offline, real components, small models built locally."""

from __future__ import annotations

import os

# Set before any Hugging Face import: hub look-ups would otherwise retry for ~24 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import json  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from polyqa import paths  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The default suite reads committed excerpts; the whole LAReQA release is only for tests marked
# `lareqa_release` (their subject is the release itself: its sizes, agreement with published figures).
XQUAD_R_EXCERPT = FIXTURES / "xquad-r"
REQUIRE_DATA_VAR = "POLYQA_REQUIRE_DATA"  # set (to 1) where the release must be present, e.g. CI
GET_DATA = "get the LAReQA release with `make data` (google-research-datasets/lareqa) and set POLYQA_DATA_DIR"

pytest_plugins = ["fixtures_translate"]
# Small corpora in the corpus contract (built from XQuAD-R) for training tests.
pytest_plugins = [*pytest_plugins, "corpus_fixtures"]


def release_dir(name: str) -> Path:
    """``$POLYQA_DATA_DIR/<name>`` of the LAReQA release; skip (or fail under POLYQA_REQUIRE_DATA=1) without it."""
    folder = paths.data_dir() / name
    if not (folder / "en.json").exists():
        message = f"{name} of the LAReQA release not found at {folder}: {GET_DATA}"
        if os.environ.get(REQUIRE_DATA_VAR, "").strip() not in ("", "0"):
            pytest.fail(f"{message} ({REQUIRE_DATA_VAR} is set, so missing data is a failure)")
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def xquad_r_dir() -> Path:
    """The committed XQuAD-R excerpt: 10 articles in all 11 languages (CC BY-SA 4.0, see its README)."""
    return XQUAD_R_EXCERPT


@dataclass(frozen=True)
class XquadR:
    """One XQuAD-R folder and the sizes tests check against (counted from its English file)."""

    dir: Path
    questions: int
    articles: int
    duplicates: int  # questions XQuAD repeats on the same paragraph under another id

    @classmethod
    def read(cls, folder: Path, duplicates: int) -> XquadR:
        articles = json.loads((folder / "en.json").read_text(encoding="utf-8"))["data"]
        questions = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
        return cls(folder, questions, len(articles), duplicates)


@pytest.fixture(scope="session", params=[
    pytest.param("excerpt"), pytest.param("release", marks=pytest.mark.lareqa_release)])
def xquad_r(request) -> XquadR:
    """The excerpt everywhere, and the whole release where POLYQA_DATA_DIR holds it."""
    if request.param == "excerpt":
        return XquadR.read(XQUAD_R_EXCERPT, duplicates=3)
    return XquadR.read(release_dir("xquad-r"), duplicates=5)


@pytest.fixture(scope="session")
def xquad_r_release() -> Path:
    """XQuAD-R of the whole LAReQA release, read in place (never copied into the repo)."""
    return release_dir("xquad-r")


@pytest.fixture(scope="session")
def mlqa_r_release() -> Path:
    """MLQA-R of the whole LAReQA release (CC BY-NC 4.0: read in place only)."""
    return release_dir("mlqa-r")


@pytest.fixture(scope="session")
def mlqa_r_like(tmp_path_factory) -> Path:
    """An MLQA-R-shaped folder (en, de, vi) made from the XQuAD-R excerpt: each language titles its
    articles in its own way and holds only part of the questions, as MLQA-R does. MLQA-R itself is
    CC BY-NC and stays outside the repository."""
    folder = tmp_path_factory.mktemp("mlqa-r-like")
    for lang, keep in (("en", lambda i: True), ("de", lambda i: i % 3 != 1), ("vi", lambda i: i % 3 != 2)):
        doc = json.loads((XQUAD_R_EXCERPT / f"{lang}.json").read_text(encoding="utf-8"))
        for article in doc["data"]:
            if lang != "en":
                article["title"] = f"{article['title']} ({lang})"
            for paragraph in article["paragraphs"]:
                paragraph["qas"] = [qa for i, qa in enumerate(paragraph["qas"]) if keep(i)]
        (folder / f"{lang}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server and database for every flow test that asks for it.

    Starting one is the slow part of a flow test (tens of seconds on a busy
    2-core machine), so the tests share it.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def pytest_terminal_summary(terminalreporter):
    """One line per reason for the skipped tests (pytest lists them one by one otherwise)."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in reasons.items():
        terminalreporter.write_line(f"{count} skipped: {reason}", yellow=True)
