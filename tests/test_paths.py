"""One place for default paths and settings: POLYQA_HOME, POLYQA_DATA_DIR, and what reads them."""

from __future__ import annotations

import re
from pathlib import Path

from polyqa import paths

REPO = Path(__file__).resolve().parents[1]


def test_home_and_its_children_follow_polyqa_home(monkeypatch, tmp_path):
    monkeypatch.setenv("POLYQA_HOME", str(tmp_path / "home"))
    assert paths.home() == tmp_path / "home"
    assert paths.models_dir() == tmp_path / "home" / "models"
    assert paths.translation_cache() == tmp_path / "home" / "translations.sqlite"
    assert paths.benchmarks_dir() == tmp_path / "home" / "benchmarks"
    monkeypatch.delenv("POLYQA_HOME")
    assert paths.home() == Path.home() / ".cache" / "polyqa"


def test_expand_resolves_both_settings_with_their_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("POLYQA_DATA_DIR", str(tmp_path / "lareqa"))
    monkeypatch.setenv("POLYQA_HOME", str(tmp_path / "home"))
    assert paths.expand("$POLYQA_DATA_DIR/xquad-r") == str(tmp_path / "lareqa" / "xquad-r")
    assert paths.expand("${POLYQA_HOME}/models") == str(tmp_path / "home" / "models")
    assert paths.expand("~/x") == str(Path.home() / "x")
    monkeypatch.delenv("POLYQA_HOME")
    assert paths.expand("$POLYQA_HOME/t.sqlite") == str(Path.home() / ".cache" / "polyqa" / "t.sqlite")


def test_the_code_resolves_polyqa_home_in_one_place():
    readers = sorted(str(p.relative_to(REPO)) for p in (REPO / "src").rglob("*.py")
                     if re.search(r"environ[^\n]*POLYQA_HOME|getenv\([^\n]*POLYQA_HOME", p.read_text("utf-8")))
    assert readers == [], f"read POLYQA_HOME through polyqa.paths, not in {readers}"
    assert "Path.home()" not in "".join(p.read_text("utf-8") for p in (REPO / "src").rglob("*.py")
                                        if p.name != "paths.py")


def test_every_polyqa_variable_the_deployment_files_set_is_read_by_something():
    """docker/ and prefect.yaml must not set variables nothing reads (the workers' cache volume was unused)."""
    code = "".join(p.read_text("utf-8") for p in (REPO / "src").rglob("*.py"))
    prefect_yaml = (REPO / "prefect.yaml").read_text("utf-8")
    for name in ("compose.yaml", "Dockerfile"):
        text = (REPO / "docker" / name).read_text("utf-8")
        for var in set(re.findall(r"\b(POLYQA_[A-Z_]+)\b", text)):
            assert var in code or "{{ $" + var + " }}" in prefect_yaml, f"docker/{name} sets {var}, which nothing reads"


def test_nothing_in_the_repository_points_outside_it():
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        path = REPO / name
        if path.suffix not in {".py", ".yaml", ".yml", ".md", ".toml", ".cfg", ".txt", ""} or \
                path == Path(__file__).resolve() or not path.is_file():
            continue
        text = path.read_text("utf-8", errors="replace")
        assert "DESIGN.md" not in text, f"{name} points to a design document users do not have"
        assert "../shared" not in text and "/work/shared" not in text, f"{name} hard-codes a data folder"


def test_benchmarks_do_not_import_test_code():
    for path in (REPO / "benchmarks").glob("*.py"):
        text = path.read_text("utf-8")
        assert not re.search(r"^\s*(from|import)\s+(tests|conftest|corpus_fixtures|fixtures_)", text, re.M), path
        assert "tests" not in re.findall(r"sys\.path\.\w+\([^)]*\)", text).__str__(), path


def test_only_the_flows_import_prefect():
    for path in (REPO / "src").rglob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+prefect", path.read_text("utf-8"), re.M), \
            f"{path.relative_to(REPO)} imports Prefect; Prefect concerns belong in flows/"
