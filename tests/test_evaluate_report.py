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


def test_results_table_rows_share_every_column():
    # Prefect's UI takes a table artifact's columns from its first row: a key only later rows
    # have (cross-lingual query pairs, the rank distance's value) would not be shown.
    from polyqa.evaluate.report import results_table

    result = {
        "settings": {
            "monolingual": {"mAP": 0.5, "mAP@20": 0.49, "queries": 10},
            "cross-lingual": {"mAP": 0.3, "mAP@20": 0.29, "queries": 10, "query_pairs": 360},
        },
        "rank_distance": {"mean": 66.4812},
    }
    rows = results_table(result)
    assert [list(row) for row in rows] == [["setting", "mAP", "mAP@20", "queries", "query_pairs", "value"]] * 3
    assert rows[1]["query_pairs"] == 360 and rows[0]["query_pairs"] is None
    assert rows[2] == {"setting": "rank distance (mean, lower is better)", "mAP": None, "mAP@20": None,
                       "queries": None, "query_pairs": None, "value": 66.48}
