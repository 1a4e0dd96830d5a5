"""No segment translated twice, whichever machine rebuilds: the translation store beside the corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.ipc as ipc

from polyqa.corpus.job import build_corpus
from polyqa.corpus.plan import plan_build
from polyqa.corpus.translations import store_parts
from test_corpus_build import small_config


def add_questions(source: Path, share: float = 0.05) -> int:
    """Append new questions (``share`` of the existing ones) to the source's passages; returns how many."""
    data = json.loads(source.read_text("utf-8"))
    paragraphs = [p for article in data["data"] for p in article["paragraphs"] if p["qas"]
                  and all(qa["question"] for qa in p["qas"]) and p["qas"][0]["answers"]]
    total = sum(len(p["qas"]) for article in data["data"] for p in article["paragraphs"])
    added = max(1, round(total * share))
    for i in range(added):
        paragraph = paragraphs[i % len(paragraphs)]
        paragraph["qas"].append({"id": f"new-{i}", "question": f"Which new question number {i} is this?",
                                 "answers": [paragraph["qas"][0]["answers"][0]]})
    source.write_text(json.dumps(data), encoding="utf-8")
    return added


def test_a_refresh_with_an_empty_cache_translates_only_the_new_segments(tmp_path, tiny_model):
    first = small_config(tmp_path, tiny_model, cache=str(tmp_path / "first.sqlite"))
    corpus = tmp_path / "corpus"
    built = build_corpus(first, corpus)
    parts = store_parts(corpus)
    assert len(parts) == 2 * built.n_shards  # one per translated unit; English needs none
    with ipc.open_file(str(parts[0])) as reader:
        assert reader.schema.names == ["source", "translation"] and reader.read_all().num_rows > 0
    assert all(e.get("translations") for e in built.shards if e["lang"] != "eng_Latn")

    added = add_questions(Path(first["sources"][0]["path"]))
    # What is new: the plan against the cache that holds exactly what the first build translated.
    expected = {p.lang: p.new_segments for p in plan_build(first).languages}
    assert all(0 < n < 10 for n in expected.values()), expected
    # A fresh machine: its cache is empty, and nothing but the corpus folder knows the old translations.
    fresh = dict(first, cache=str(tmp_path / "fresh.sqlite"))
    refreshed = build_corpus(fresh, corpus, refresh=True)
    assert refreshed.records == built.records + added
    translated = {lang: counts["translated"] for lang, counts in refreshed.translation_per_language().items()}
    assert translated == expected
    # The store now holds the refreshed corpus's translations, and no stray part of the old one.
    listed = {e["translations"]["path"] for e in refreshed.shards if e.get("translations")}
    assert {str(p.relative_to(corpus)) for p in store_parts(corpus)} == listed


def test_overwrite_removes_the_store_and_a_refresh_keeps_it_until_rebuilt(tmp_path, tiny_model):
    config = small_config(tmp_path, tiny_model)
    corpus = tmp_path / "corpus"
    build_corpus(config, corpus)
    assert store_parts(corpus)
    rebuilt = build_corpus(config, corpus, overwrite=True)
    # An overwrite starts from nothing: every segment comes from the (machine's) cache, none from the store.
    assert rebuilt.translation_totals()["translated"] == 0 and store_parts(corpus)
    other = dict(config, languages=["de"])  # a refresh that drops a language drops its part of the store
    refreshed = build_corpus(other, corpus, refresh=True)
    assert {p.parent.name for p in store_parts(corpus)} == {"lang=deu_Latn"}
    assert refreshed.languages == ["eng_Latn", "deu_Latn"]
