"""Long builds report per-language progress with an ETA, on the command line and in the flow."""

from __future__ import annotations

import itertools
import re

import pytest

from polyqa.corpus.progress import BuildProgress, format_eta


def test_progress_counts_each_language_and_estimates_what_is_left(monkeypatch):
    clock = itertools.chain([0.0, 0.0], itertools.repeat(20.0))  # created at 0; every later reading 20 s on
    monkeypatch.setattr("polyqa.corpus.progress.time.monotonic", lambda: next(clock))
    progress = BuildProgress.for_units(["eng_Latn", "deu_Latn"], 3, [(1, "eng_Latn"), (1, "deu_Latn"),
                                                                   (2, "eng_Latn"), (2, "deu_Latn")],
                                       [{"lang": "eng_Latn", "rows": 50}, {"lang": "deu_Latn", "rows": 50}])
    assert progress.languages["deu_Latn"].done_units == 1 and progress.languages["deu_Latn"].rows == 50
    assert progress.eta_seconds() is None  # no pace yet
    progress.record("eng_Latn", 50, 0, 0)
    progress.record("deu_Latn", 50, 120, 30)  # two units in 20 s: 10 s each
    german = progress.languages["deu_Latn"]
    assert (german.done_units, german.rows, german.segments, german.cache_hits) == (2, 100, 120, 30)
    assert progress.remaining_units == 2
    assert progress.eta_seconds() == pytest.approx(20.0)  # 2 units left at 10 s each
    line = progress.line()
    assert "deu_Latn 2/3 shards, 100 rows, 120 segments, ETA 10 s" in line and "whole build ETA 20 s" in line
    assert line == "progress: " + progress.summary()
    assert "| deu_Latn | 2/3 | 100 | 120 | 30 | 10 s |" in progress.markdown()


def test_eta_reads_as_a_person_would_say_it():
    assert [format_eta(s) for s in (None, 0, 0.5, 45, 600, 3 * 3600)] == \
        ["unknown", "done", "< 1 s", "45 s", "10 min", "3.0 h"]


def test_the_command_reports_progress_per_language(tmp_path, tiny_model, capsys):
    import yaml

    from polyqa.cli import main as cli_main
    from test_corpus_build import small_config

    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump(small_config(tmp_path, tiny_model)))
    assert cli_main(["build-corpus", "--config", str(config), "--output", str(tmp_path / "c"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    last = [line for line in err.splitlines() if line.startswith("progress: ")][-1]
    assert "eng_Latn 3/3 shards, 20 rows" in last and "deu_Latn 3/3 shards, 20 rows" in last
    assert re.search(r"deu_Latn 3/3 shards, 20 rows, [1-9][\d,]* segments, ETA done", last), last
    assert last.endswith("; whole build ETA done")
