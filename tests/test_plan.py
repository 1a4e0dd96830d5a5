"""`polyqa build-corpus --plan`: what a build will translate and cost, read before it starts, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyqa.cli import main as cli_main
from polyqa.corpus.job import build_corpus
from polyqa.corpus.plan import SPECIAL_TOKENS, TOKENS_PER_WORD, plan_build, throughputs
from test_corpus_build import small_config


def one_shard_config(tmp: Path, tiny_model, **overrides) -> dict:
    # One shard: the build's per-shard statistics then count the same distinct segments as the plan.
    return small_config(tmp, tiny_model, shard_rows=1000, **overrides)


def test_the_plan_counts_what_the_build_then_translates(tmp_path, tiny_model):
    config = one_shard_config(tmp_path, tiny_model)
    plan = plan_build(config)
    assert not (tmp_path / "translations.sqlite").exists(), "a plan creates no cache"
    assert [p.lang for p in plan.languages] == ["deu_Latn", "fra_Latn"]
    assert plan.records == 20 and plan.quarantined == 3
    assert plan.tokens_counted_with == "the model's tokenizer"
    for lang in plan.languages:
        assert lang.cached_segments == 0 and lang.new_segments == lang.segments > 0
        assert lang.new_tokens == lang.source_tokens > lang.segments
    manifest = build_corpus(config, tmp_path / "corpus")
    done = manifest.translation_per_language()
    for lang in plan.languages:
        assert done[lang.lang]["unique_segments"] == lang.segments
        assert done[lang.lang]["source_tokens"] == lang.source_tokens
        assert lang.rows == manifest.records
    # After the build, the cache holds every segment: nothing is left to translate.
    again = plan_build(config)
    assert [(p.cached_segments, p.new_segments, p.new_tokens) for p in again.languages] == \
        [(p.segments, 0, 0) for p in plan.languages]


def test_a_refresh_plan_counts_only_the_new_questions(tmp_path, tiny_model):
    config = one_shard_config(tmp_path, tiny_model)
    build_corpus(config, tmp_path / "corpus")
    source = Path(config["sources"][0]["path"])
    data = json.loads(source.read_text("utf-8"))
    paragraph = data["data"][0]["paragraphs"][0]
    paragraph["qas"].append({"id": "new-1", "question": "Which new question is this one?",
                             "answers": [paragraph["qas"][0]["answers"][0]]})
    source.write_text(json.dumps(data), encoding="utf-8")
    plan = plan_build(config)
    for lang in plan.languages:
        assert lang.new_segments == 1, "only the new question is new; its passage and answer are cached"


def test_the_plan_estimates_time_from_a_named_throughput_figure(tmp_path, tiny_model):
    plan = plan_build(one_shard_config(tmp_path, tiny_model))
    figures = {(t.model, t.device) for t in throughputs()}
    assert ("tiny", "cpu") in figures
    assert plan.estimates and all(e.throughput.model == "tiny" for e in plan.estimates)
    cpu = next(e for e in plan.estimates if e.device == "cpu")
    assert cpu.hours == pytest.approx(plan.new_tokens / cpu.throughput.tokens_per_second / 3600)
    assert cpu.throughput.basis and "benchmarks/throughput.py" in cpu.throughput.basis
    text = plan.render()
    assert "tokens to translate" in text and "nothing was written" in text and "cpu:" in text


def test_every_shipped_figure_says_where_it_comes_from():
    for t in throughputs():
        assert t.tokens_per_second > 0 and t.device in ("cpu", "cuda") and t.beam_size >= 1
        assert len(t.basis) > 20, t
        if t.measured:
            assert "benchmarks/throughput.py" in t.basis, t


def test_a_model_that_is_not_here_is_planned_with_estimated_tokens(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = one_shard_config(tmp_path, tiny_model, model="facebook/nllb-200-distilled-600M",
                              models_dir=str(tmp_path / "models"))
    plan = plan_build(config)
    assert plan.tokens_counted_with.startswith("an estimate")
    assert any("not available here" in note for note in plan.notes)
    english = json.loads(Path(config["sources"][0]["path"]).read_text("utf-8"))
    question = english["data"][0]["paragraphs"][0]["qas"][0]["question"]
    assert plan.languages[0].source_tokens >= round(len(question.split()) * TOKENS_PER_WORD) + SPECIAL_TOKENS
    # The 600M model has figures: the time is still estimated, from the estimated tokens.
    assert {e.device for e in plan.estimates} == {"cpu", "cuda"}
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_the_command_prints_the_plan_and_writes_nothing(tmp_path, tiny_model, capsys):
    config_file = tmp_path / "build.yaml"
    import yaml

    config_file.write_text(yaml.safe_dump(one_shard_config(tmp_path, tiny_model)))
    out = tmp_path / "corpus"
    assert cli_main(["build-corpus", "--config", str(config_file), "--output", str(out), "--plan"]) == 0
    printed = capsys.readouterr().out
    assert "| deu_Latn |" in printed and "| fra_Latn |" in printed and "nothing was written" in printed
    assert not out.exists()
    assert cli_main(["build-corpus", "--config", str(config_file), "--plan"]) == 0  # --output is optional
    assert cli_main(["build-corpus", "--config", str(config_file)]) == 2
    assert "--output is required" in capsys.readouterr().err
