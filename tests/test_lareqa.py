"""The one LAReQA parser (polyqa.sources.lareqa): the corpus sources and the evaluation read the same thing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyqa.evaluate.lareqa import load_lareqa
from polyqa.sources import lareqa
from polyqa.sources.base import RawRecord, SourceError, open_source

FIXTURES = Path(__file__).parent / "fixtures"
XQUAD_LANGS = ["en", "de", "zh", "el", "ar", "ru"]


def test_parallel_import_and_evaluation_give_the_same_sentences_and_answer_sentence(xquad_r):
    """For every question in every language: the training side's sentence list and answer sentence
    (parallel import, as the corpus stores them) are the evaluation's candidates and relevant candidate."""
    bench = load_lareqa(xquad_r.dir, "xquad-r", XQUAD_LANGS)
    by_query = {(q.qid, q.language): q for q in bench.queries}
    records = [item for item in open_source({"preset": "xquad_r", "path": str(xquad_r.dir), "languages": XQUAD_LANGS})
               if isinstance(item, RawRecord)]
    assert len(records) == xquad_r.questions
    checked = 0
    for english in records:
        for lang, rec in {"eng_Latn": english, **english.translations}.items():
            query = by_query[(rec.original_id, lang)]
            relevant = [bench.candidates[i] for i in query.relevant if bench.candidates[i].language == lang]
            assert len(relevant) == 1
            paragraph = [c.text for c in bench.candidates if c.language == lang and c.context == rec.passage]
            assert rec.sentences == paragraph
            spans = [(start, start + len(text)) for start, text in zip(rec.sentence_starts, rec.sentences)]
            assert rec.sentences[lareqa.answer_sentence(spans, rec.answers[0].start)] == relevant[0].text
            checked += 1
    assert checked == xquad_r.questions * len(XQUAD_LANGS)


def test_language_files_accept_any_spelling_and_name_what_is_missing(tmp_path):
    files = lareqa.language_files(FIXTURES / "mlqa-r")
    assert list(files) == ["deu_Latn", "eng_Latn", "spa_Latn"]
    assert list(lareqa.language_files(FIXTURES / "mlqa-r", ["spa_Latn", "en"])) == ["spa_Latn", "eng_Latn"]
    with pytest.raises(lareqa.LanguageFileNotFound, match=r"hin_Deva.*de\.json"):
        lareqa.language_files(FIXTURES / "mlqa-r", ["hi"])
    # A missing language is both a source error (corpus build) and a FileNotFoundError (evaluation).
    assert issubclass(lareqa.LanguageFileNotFound, SourceError)
    assert issubclass(lareqa.LanguageFileNotFound, FileNotFoundError)
    (tmp_path / "zho_Hant.json").write_text("{}")
    (tmp_path / "xquad-r-de.json").write_text("{}")
    (tmp_path / "notes.json").write_text("{}")
    assert {code: p.name for code, p in lareqa.language_files(tmp_path).items()} == {
        "zho_Hant": "zho_Hant.json", "deu_Latn": "xquad-r-de.json"}


def test_read_paragraphs_gives_sentences_breaks_and_answer_sentence():
    paragraphs = list(lareqa.read_paragraphs(FIXTURES / "mlqa-r" / "es.json"))
    assert [(p.title, p.where.split(": ")[-1]) for p in paragraphs] == [
        ("Té", "data[0].paragraphs[0]"), ("Danubio", "data[1].paragraphs[0]")]
    danube = paragraphs[1]
    assert danube.sentences == ("El Danubio nace en la Selva Negra.", "Desemboca en el mar Negro.")
    assert danube.breaks == ((0, 34), (35, 61))
    m2, m6 = danube.questions
    assert (m2.qid, m2.answer_start, m2.answer_sentence, m2.problem) == ("m2", 22, 0, None)
    assert m6.answer_sentence is None and "answer_start 9999" in m6.problem


def test_strict_reader_and_lenient_sources_on_broken_breaks(tmp_path):
    paragraph = {"context": "One. Two.", "sentences": ["One.", "Two."], "sentence_breaks": [[0, 4], "5-9"],
                 "qas": [{"id": "a", "question": "?", "answers": [{"text": "One", "answer_start": 0}]}]}
    path = tmp_path / "en.json"
    path.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [paragraph]}]}))
    with pytest.raises(lareqa.LareqaFormatError, match=r"en\.json: data\[0\]\.paragraphs\[0\].*sentence_breaks\[1\]"):
        list(lareqa.read_paragraphs(path))
    # Sources also read plain SQuAD: unusable breaks mean "segment it yourself", not an error.
    assert lareqa.given_sentences(paragraph) is None
    assert lareqa.given_sentences({"context": "One. Two."}) is None
    paragraph["sentence_breaks"][1] = [5, 9]
    assert lareqa.given_sentences(paragraph) == (["One.", "Two."], [0, 5])


def test_article_titles_for_the_study_split(xquad_r, tmp_path):
    titles = lareqa.article_titles(xquad_r.dir)
    en = json.loads((xquad_r.dir / "en.json").read_text())
    assert titles == sorted({a["title"] for a in en["data"]}) and len(titles) == xquad_r.articles
    assert lareqa.article_titles(FIXTURES / "mlqa-r", "de") == sorted(
        {a["title"] for a in json.loads((FIXTURES / "mlqa-r" / "de.json").read_text())["data"]})
    with pytest.raises(FileNotFoundError, match="eng_Latn"):
        lareqa.article_titles(tmp_path)
    (tmp_path / "en.json").write_text(json.dumps({"data": [{"paragraphs": []}]}))
    with pytest.raises(lareqa.LareqaFormatError, match=r"data\[0\]: missing field 'title'"):
        lareqa.article_titles(tmp_path)
