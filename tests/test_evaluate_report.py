"""Report side: training languages from a model folder, output file names."""

from __future__ import annotations

import json

import pytest

from polyqa.evaluate.report import output_paths
from polyqa.evaluate.result import training_languages


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


def test_the_typed_result_reads_lareqa_and_miracl_results():
    from polyqa.evaluate.result import EvaluationResult

    lareqa = {
        "benchmark": "xquad-r", "languages": ["eng_Latn", "deu_Latn", "ell_Grek"],
        "counts": {"queries": 6, "candidates": 9},
        "settings": {
            "monolingual": {"mAP": 0.5, "mAP@20": 0.45, "R@1": 0.3, "R@10": 0.9,
                            "per_language": {"eng_Latn": 0.7, "deu_Latn": 0.5, "ell_Grek": 0.3}},
            "cross-lingual": {"mAP": 0.4, "per_pair": {"eng_Latn": {"deu_Latn": 0.6, "ell_Grek": 0.2},
                                                       "deu_Latn": {"eng_Latn": 0.5, "ell_Grek": None},
                                                       "ell_Grek": {"eng_Latn": 0.1, "deu_Latn": 0.3}}},
            "multilingual": {"mAP": 0.35, "per_language": {"eng_Latn": 0.4, "deu_Latn": 0.3, "ell_Grek": None}},
        },
        "rank_distance": {"mean": 12.5},
    }
    result = EvaluationResult.from_dict(lareqa)
    assert result.has_language_pairs and (result.queries, result.candidates, result.rank_distance) == (6, 9, 12.5)
    mono, cross, multi = (result.settings[s] for s in ("monolingual", "cross-lingual", "multilingual"))
    assert (mono.map, mono.map_at_20, mono.recall) == (0.5, 0.45, {1: 0.3, 10: 0.9})
    seen, unseen = {"eng_Latn", "deu_Latn"}, {"ell_Grek"}
    assert mono.map_of(seen) == pytest.approx(0.6) and mono.map_of(unseen) == pytest.approx(0.3)
    assert multi.map_of(unseen) is None  # no defined value among them
    assert cross.map_of(seen) == pytest.approx(0.55)  # both sides seen: en->de, de->en
    assert cross.map_touching(unseen) == pytest.approx((0.2 + 0.1 + 0.3) / 3)  # None left out

    miracl = {"benchmark": "miracl", "languages": ["swh_Latn"],
              "settings": {"monolingual": {"nDCG@10": 0.41, "Recall@100": 0.8, "queries": 3,
                                           "per_language": {"swh_Latn": {"nDCG@10": 0.41, "Recall@100": 0.8}}}},
              "rank_distance": None}
    result = EvaluationResult.from_dict(miracl)
    assert not result.has_language_pairs and result.rank_distance is None
    assert (result.settings["monolingual"].ndcg_at_10, result.settings["monolingual"].recall_at_100) == (0.41, 0.8)
    assert result.settings["monolingual"].map is None and result.settings["monolingual"].per_language is None
