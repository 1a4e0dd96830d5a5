"""Report side: training languages from a model folder, output file names."""

from __future__ import annotations

import json

import pytest

from polyqa.evaluate.report import output_paths, training_languages


def test_training_languages_from_polyqa_training_json(tmp_path):
    (tmp_path / "polyqa_training.json").write_text(json.dumps({"languages": ["de", "eng_Latn", "zh"]}))
    assert training_languages(str(tmp_path)) == ["deu_Latn", "eng_Latn", "zho_Hans"]


def test_training_languages_from_model_card_front_matter(tmp_path):
    (tmp_path / "README.md").write_text(
        "---\nlanguage: [en, de]\npolyqa:\n  languages: [arb_Arab, tha_Thai]\n  strategy: hybrid\n---\n# Model\n"
    )
    assert training_languages(str(tmp_path)) == ["arb_Arab", "tha_Thai"]


def test_training_languages_unknown_or_bad(tmp_path):
    assert training_languages(str(tmp_path)) is None  # no record: no seen/unseen split
    assert training_languages("some/hub-id") is None
    (tmp_path / "polyqa_training.json").write_text(json.dumps({"languages": "de"}))
    with pytest.raises(ValueError, match="polyqa_training.json: field 'languages'"):
        training_languages(str(tmp_path))


def test_output_paths(tmp_path):
    paths = output_paths(tmp_path / "run.json")
    assert paths["md"].name == "run.md" and paths["heatmap"].name == "run.heatmap.png"
    assert output_paths(tmp_path / "run")["json"].name == "run.json"
