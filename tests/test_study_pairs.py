"""The study reports the training pairs each cell used and skipped, with the reasons."""

from __future__ import annotations

import json
from types import SimpleNamespace

from polyqa.study.report import render_report
from polyqa.study.results import pairs_used_and_skipped


def test_pairs_used_and_skipped_from_a_run_record():
    record = {"usable_rows": {"eng_Latn": 100, "deu_Latn": 90},
              "skipped_rows": {"eng_Latn": {"quality_pass_false": 0, "null_positive": 0, "held_out_article": 20},
                               "deu_Latn": {"quality_pass_false": 7, "null_positive": 3, "held_out_article": 20}},
              "skipped_rows_total": 50}
    columns = pairs_used_and_skipped(record)
    assert columns["train_pairs_used"] == 190 and columns["train_pairs_skipped"] == 50
    assert json.loads(columns["train_pairs_skipped_reasons"]) == {
        "held_out_article": 40, "null_positive": 3, "quality_pass_false": 7}
    assert pairs_used_and_skipped({}) == {"train_pairs_used": 0, "train_pairs_skipped": 0,
                                          "train_pairs_skipped_reasons": "{}"}


def test_report_lists_pairs_used_and_skipped_per_cell():
    config = SimpleNamespace(name="t", base_model="minilm", language_order=["en", "de"], unseen=[],
                             strategies=["hybrid"], language_counts=[2], languages_per_batch=[None], seeds=[0],
                             train={}, notes="",
                             evaluate=[{"benchmark": "xquad-r"}])
    trained = {"cell": "n2-hybrid-capall-seed0", "n_languages": 2, "strategy": "hybrid", "languages_per_batch": None,
               "seed": 0, "xquad_r_multilingual_map": 0.5, "train_pairs_used": 190, "train_pairs_skipped": 10,
               "train_pairs_skipped_reasons": json.dumps({"null_positive": 3, "quality_pass_false": 7})}
    old = {"cell": "n0-zero-shot-capall-seed0", "n_languages": 0, "strategy": "zero-shot",
           "languages_per_batch": None, "seed": 0, "xquad_r_multilingual_map": 0.4}  # a record from before
    report = render_report([trained, old], [], config, {})
    assert "| pairs used | pairs skipped (why) |" in report
    line = next(line for line in report.splitlines() if line.startswith("| n2-hybrid"))
    assert line.endswith("| 190 | 10 (quality_pass_false 7, null_positive 3) |")
    assert next(line for line in report.splitlines() if line.startswith("| n0-zero")).endswith("| – | – |")
