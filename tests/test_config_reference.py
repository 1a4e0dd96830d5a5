"""The README's configuration reference lists every key the config classes accept, every source kind
and every preset, so the documentation cannot fall behind the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def section(title: str) -> str:
    """The README's section under ``title``, up to the next heading of the same or a higher level."""
    text = (REPO / "README.md").read_text("utf-8")
    start = text.index(title)
    level = len(title) - len(title.lstrip("#"))
    following = re.search(rf"\n#{{1,{level}}} ", text[start + len(title):])
    return text[start:start + len(title) + (following.start() if following else len(text))]


def reference() -> str:
    return section("## Configuration reference")


def documented(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_0-9]+)`", text))


def config_classes():
    from polyqa.corpus.config import BuildConfig
    from polyqa.evaluate.config import EvaluationConfig
    from polyqa.study import StudyConfig
    from polyqa.train.config import TrainConfig

    return [("### Build config", BuildConfig), ("### Training config", TrainConfig),
            ("### Evaluation", EvaluationConfig), ("### Study config", StudyConfig)]


@pytest.mark.parametrize("title, cls", config_classes())
def test_every_key_of_every_config_class_is_in_the_reference(title, cls):
    part = section(title)
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in documented(part)]
    assert not missing, f"README {title} lacks {missing}"


def test_nested_settings_are_in_the_reference():
    from polyqa.corpus.quality import ProjectionSettings, QualityThresholds
    from polyqa.translate.engine import DecodingSettings

    keys = documented(section("### Build config"))
    for cls in (DecodingSettings, QualityThresholds, ProjectionSettings):
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in keys]
        assert not missing, f"README lacks {cls.__name__} keys {missing}"


def test_every_source_kind_and_preset_is_in_the_reference():
    from polyqa.sources.base import _load_builtin_kinds, presets, source_kinds

    _load_builtin_kinds()
    keys = documented(section("#### Sources"))
    assert set(source_kinds()) <= keys, set(source_kinds()) - keys
    assert set(presets()) <= keys, set(presets()) - keys
    for key in ("path", "name", "license", "titles", "exclude_titles", "columns", "dataset", "split"):
        assert key in keys


def test_the_default_config_shows_a_local_file_source():
    from importlib import resources

    text = resources.files("polyqa.data").joinpath("default_config.yaml").read_text("utf-8")
    assert re.search(r"#\s*- \{?kind: squad_json, path: ", text), "show how to declare your own SQuAD file"
