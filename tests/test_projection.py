"""Answer sentences from alignment, and span projection: markers, then the aligned sentence, then the passage.

Unit tests drive the row assembly with a deterministic translator (a word gloss
that keeps or mangles the markers); the engine path and the alignment property
run the real tiny CTranslate2 model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyqa.corpus.config import BuildConfig
from polyqa.corpus.job import build_corpus
from polyqa.corpus.reader import read_language
from polyqa.corpus.rows import (
    MARKER_KEY,
    language_rows,
    marked_segment,
    shard_statistics,
    unique_segments,
)
from polyqa.corpus.schema import (
    CORPUS_SCHEMA,
    PROJECTION_EXACT,
    PROJECTION_MARKER,
    PROJECTION_NONE,
    PROJECTION_SOURCE,
    SENTENCE_ALIGNED,
    SENTENCE_SOURCE,
)
from polyqa.corpus.validate import check_rows, validate_corpus
from polyqa.corpus.writer import to_corpus_table
from polyqa.corpus.quality import (
    MARKER_DUPLICATED,
    MARKER_EMPTY,
    MARKER_LOST,
    MARKER_NOT_IN_SENTENCE,
    MARKER_NOT_MARKED,
    MARKER_PROJECTED,
    ProjectionSettings,
    QualityThresholds,
    mark_answer,
    project_marked,
    read_marked,
)

MARKERS = ProjectionSettings()
GERMAN = "deu_Latn"
SENTENCES = ["The lighthouse stood on the island of Pharos.", "Sostratus built it in 280 BC.",
             "Ships saw its fire from far away."]
GLOSS = {"The": "Der", "lighthouse": "Leuchtturm", "stood": "stand", "on": "auf", "the": "der", "island": "Insel",
         "of": "von", "built": "baute", "it": "ihn", "in": "im", "Ships": "Schiffe", "saw": "sahen", "its": "sein",
         "fire": "Feuer", "from": "von", "far": "weit", "away": "weg", "Who": "Wer", "When": "Wann",
         "What": "Was", "did": "tat", "was": "war", "Sostratus": "Sostratos"}


def gloss(text: str) -> str:
    """Word-for-word 'German': every character that is not a glossed word (markers too) is kept."""
    return re.sub(r"\w+", lambda m: GLOSS.get(m.group(), m.group()), text)


def record(answer: str, *, sentences: list[str] = SENTENCES, occurrence: int = 0, qa_id: str = "q1") -> dict:
    passage = " ".join(sentences)
    starts, at = [], 0
    for sentence in sentences:
        starts.append(at)
        at += len(sentence) + 1
    start = -1
    for _ in range(occurrence + 1):
        start = passage.index(answer, start + 1)
    return {"qa_id": qa_id, "passage_id": "p1", "source": "test", "license": "CC0-1.0", "title": "Pharos",
            "question": "Who built it?", "passage": passage, "sentences": sentences, "sentence_starts": starts,
            "answer_text": answer, "answer_start": start, "translations": None}


def translate_rows(records: list[dict], translate: Callable[[str], str],
                   markers: ProjectionSettings | None = MARKERS) -> tuple[list[str], list[dict]]:
    """(segments asked for, German rows), the way assemble_unit does it, with ``translate`` as the engine."""
    segments = unique_segments(records, markers)
    translation = {s: translate(s) for s in segments}
    return segments, language_rows(records, GERMAN, translation, QualityThresholds(), markers)


def translator(*, answer: dict[str, str] | None = None, marked: Callable[[str], str] = lambda t: t,
               open_: str = "[") -> Callable[[str], str]:
    """Glosses every segment; ``answer`` overrides whole segments (the answer translated alone),
    ``marked`` rewrites the translation of marked sentences (markers kept, lost, doubled...)."""
    def translate(segment: str) -> str:
        if open_ in segment:
            return marked(gloss(segment))
        return (answer or {}).get(segment, gloss(segment))
    return translate


def check_row(row: dict) -> None:
    """The row fits the schema and validate's invariants."""
    assert check_rows(to_corpus_table([row]), GERMAN, "test") == []


# --------------------------------------------------------------------------- marker reading


def test_mark_answer_wraps_the_trimmed_span_and_refuses_ambiguous_sentences():
    sentence = "Sostratus built it in 280 BC."
    assert mark_answer(sentence, 0, 10, MARKERS) == "[Sostratus] built it in 280 BC."  # trailing space trimmed
    assert mark_answer(sentence, 22, 28, MARKERS) == "Sostratus built it in [280 BC]."
    assert mark_answer(sentence, 3, 3, MARKERS) is None  # empty span
    assert mark_answer(sentence, 22, 99, MARKERS) is None  # runs past the sentence
    assert mark_answer("It cost [sic] 280 talents.", 0, 2, MARKERS) is None  # a marker already in the sentence
    custom = ProjectionSettings(open="<<", close=">>")
    assert mark_answer("It cost [sic] 280 talents.", 14, 17, custom) == "It cost [sic] <<280>> talents."


@pytest.mark.parametrize("marked, expected", [
    ("Sostratos baute ihn im [280 BC].", ("280 BC", MARKER_PROJECTED)),
    ("Sostratos baute ihn im [ 280 BC ].", ("280 BC", MARKER_PROJECTED)),
    ("Sostratos baute ihn im 280 BC.", (None, MARKER_LOST)),
    ("Sostratos baute ihn im [280 BC.", (None, MARKER_LOST)),
    ("Sostratos baute ihn im ]280 BC[.", (None, MARKER_LOST)),
    ("[Sostratos] baute ihn im [280 BC].", (None, MARKER_DUPLICATED)),
    ("Sostratos baute [ihn im [280 BC]].", (None, MARKER_DUPLICATED)),  # nested
    ("Sostratos baute ihn im [] 280 BC.", (None, MARKER_EMPTY)),
    ("Sostratos baute ihn im [  ] 280 BC.", (None, MARKER_EMPTY)),
])
def test_read_marked(marked, expected):
    span = read_marked(marked, MARKERS)
    assert (span.text, span.outcome) == expected


def test_project_marked_needs_the_span_in_the_unmarked_sentence_and_takes_the_nearest_occurrence():
    sentence = "Im Jahr 280 baute er, nicht 280 Leute."
    p, outcome = project_marked("Im Jahr 280 baute er, nicht [280] Leute.", sentence, MARKERS)
    assert (p.kind, p.start, p.text, outcome) == (PROJECTION_MARKER, sentence.rindex("280"), "280", MARKER_PROJECTED)
    p, _ = project_marked("Im Jahr [280] baute er, nicht 280 Leute.", sentence, MARKERS)
    assert p.start == sentence.index("280")
    p, outcome = project_marked("Im Jahr [jahr 280!] baute er.", "Im Jahr 280 baute er.", MARKERS)
    assert (p.kind, p.text, outcome) == (PROJECTION_MARKER, "Jahr 280", MARKER_PROJECTED)  # normalised match
    p, outcome = project_marked("Im Jahr [zweihundertachtzig] baute er.", sentence, MARKERS)
    assert (p.kind, p.start, outcome) == (PROJECTION_NONE, None, MARKER_NOT_IN_SENTENCE)


def test_projection_settings_are_checked():
    assert ProjectionSettings.from_config(None) == ProjectionSettings(True, "[", "]")
    assert ProjectionSettings.from_config({"markers": False}).markers is False
    for bad, message in [({"marker": True}, "unknown projection settings"), ({"open": " "}, "non-blank"),
                         ({"open": "|", "close": "|"}, "must differ"), ({"open": "<<", "close": "<"}, "must differ"),
                         ({"markers": "yes"}, "true or false"), (False, "must be a mapping")]:
        with pytest.raises(ValueError, match=message):
            ProjectionSettings.from_config(bad)


def test_build_config_projection_is_content_and_complete():
    default = BuildConfig.default()
    assert default.projection == {"markers": True, "open": "[", "close": "]"}
    spelled_out = BuildConfig.from_dict({"projection": {"markers": True, "open": "[", "close": "]"}})
    assert BuildConfig.from_dict({}).fingerprint() == spelled_out.fingerprint()
    off = BuildConfig.from_dict({"projection": {"markers": False}})
    assert off.fingerprint() != spelled_out.fingerprint() and not off.projection_settings().markers
    with pytest.raises(ValueError, match="unknown projection settings"):
        BuildConfig.from_dict({"projection": {"opn": "["}})


# --------------------------------------------------------------------------- rows


def test_markers_kept_give_the_span_when_the_translated_answer_is_nowhere():
    rec = record("280 BC")
    segments, [row] = translate_rows([rec], translator(answer={"280 BC": "im Jahre 280 vor Christus"}))
    assert "Sostratus built it in [280 BC]." in segments  # one extra segment for the question
    assert row["answer_projection"] == PROJECTION_MARKER and row["answer_text"] == "280 BC"
    assert row["passage"][row["answer_start"]:].startswith("280 BC")
    assert row["sentences"][1] == "Sostratos baute ihn im 280 BC."
    assert (row["answer_sentence"], row["answer_sentence_source"]) == (1, SENTENCE_ALIGNED)
    assert row[MARKER_KEY] == MARKER_PROJECTED
    check_row(row)


@pytest.mark.parametrize("mangle, outcome", [
    (lambda t: t.replace("[", "").replace("]", ""), MARKER_LOST),
    (lambda t: t + " " + t[t.index("["):t.index("]") + 1], MARKER_DUPLICATED),
    (lambda t: t.replace("[", "[[").replace("]", "]]"), MARKER_DUPLICATED),
    (lambda t: t.replace("[280 BC]", "[] 280 BC"), MARKER_EMPTY),
    (lambda t: t.replace("[280 BC]", "[im Jahr 280]"), MARKER_NOT_IN_SENTENCE),
])
def test_unusable_markers_fall_back_to_the_sentence_search(mangle, outcome):
    [row] = translate_rows([record("280 BC")], translator(marked=mangle))[1]
    assert row[MARKER_KEY] == outcome
    assert row["answer_projection"] == PROJECTION_EXACT and row["answer_text"] == "280 BC"
    assert row["answer_start"] == row["sentence_starts"][1] + row["sentences"][1].index("280 BC")
    assert (row["answer_sentence"], row["answer_sentence_source"]) == (1, SENTENCE_ALIGNED)
    check_row(row)


def test_sentence_search_before_the_passage():
    sentences = ["The keeper lived by the harbour.", "Ships saw its fire from the harbour.", "It was tall."]
    rec = record("harbour", sentences=sentences, occurrence=1)  # the second "harbour", in sentence 1
    [row] = translate_rows([rec], translator(marked=lambda t: t.replace("[", "").replace("]", "")))[1]
    assert row["answer_sentence"] == 1 and row["answer_projection"] == PROJECTION_EXACT
    assert row["answer_start"] == row["sentence_starts"][1] + row["sentences"][1].index("harbour")
    check_row(row)


def test_answer_not_found_keeps_its_aligned_sentence():
    translate = translator(answer={"Sostratus": "Baumeister"},
                           marked=lambda t: t.replace("[", "").replace("]", ""))
    [row] = translate_rows([record("Sostratus")], translate)[1]
    assert row["answer_projection"] == PROJECTION_NONE and row["answer_start"] is None
    assert row["answer_text"] == "Baumeister"  # the answer's own translation is kept
    assert (row["answer_sentence"], row["answer_sentence_source"]) == (1, SENTENCE_ALIGNED)
    check_row(row)


def test_answer_across_a_sentence_boundary_is_not_marked_but_keeps_its_sentence():
    rec = record("Pharos. Sostratus")
    assert marked_segment(rec, MARKERS) is None
    segments, [row] = translate_rows([rec], translator())
    assert not any("[" in s for s in segments)
    assert row[MARKER_KEY] == MARKER_NOT_MARKED
    assert (row["answer_sentence"], row["answer_sentence_source"]) == (0, SENTENCE_ALIGNED)
    # found in the passage (the search's last step), starting in the aligned sentence
    assert row["answer_text"] == "Pharos. Sostratos" and row["answer_projection"] == PROJECTION_EXACT
    check_row(row)


def test_markers_off_asks_for_no_extra_segment():
    records = [record("280 BC"), record("Sostratus", qa_id="q2")]
    on, _ = translate_rows(records, translator())
    off, rows = translate_rows(records, translator(), ProjectionSettings(markers=False))
    assert len(on) == len(off) + 2 and not any("[" in s for s in off)
    assert [r["answer_projection"] for r in rows] == [PROJECTION_EXACT, PROJECTION_EXACT]
    assert [r[MARKER_KEY] for r in rows] == [None, None]
    assert [r["answer_sentence"] for r in rows] == [1, 1]


def test_custom_markers():
    custom = ProjectionSettings(open="<<", close=">>")
    rec = record("280 BC")
    assert marked_segment(rec, custom) == "Sostratus built it in <<280 BC>>."
    [row] = translate_rows([rec], translator(answer={"280 BC": "nirgends"}, open_="<<"), custom)[1]
    assert row["answer_projection"] == PROJECTION_MARKER and row["answer_text"] == "280 BC"


def test_statistics_count_sentence_sources_and_marker_outcomes():
    records = [record("280 BC"), record("Sostratus", qa_id="q2"), record("Pharos. Sostratus", qa_id="q3")]
    translate = translator(answer={"280 BC": "nirgends"},
                           marked=lambda t: t if "[280" in t else t.replace("[", ""))
    rows = translate_rows(records, translate)[1]
    stats = shard_statistics(rows)
    assert stats.answer_sentence == {SENTENCE_ALIGNED: 3}
    assert stats.markers == {MARKER_PROJECTED: 1, MARKER_LOST: 1, MARKER_NOT_MARKED: 1}
    assert stats.projection == {PROJECTION_MARKER: 1, PROJECTION_EXACT: 2}
    english = language_rows(records, "eng_Latn", {}, QualityThresholds())
    assert shard_statistics(english).answer_sentence == {SENTENCE_SOURCE: 3}
    assert shard_statistics(english).markers == {}
    assert {r["answer_projection"] for r in english} == {PROJECTION_SOURCE}
    assert to_corpus_table(rows).schema.equals(CORPUS_SCHEMA)


def test_validate_checks_answer_sentence_against_english():
    rows = translate_rows([record("280 BC"), record("Pharos", qa_id="q2")], translator())[1]
    table = to_corpus_table(rows)
    assert check_rows(table, GERMAN, "t", english=[1, 0]) == []
    errors = check_rows(table, GERMAN, "t", english=[1, 2])
    assert len(errors) == 1 and "the English row's is 2" in errors[0]
    bad = dict(rows[0], answer_sentence=None)
    assert "answer_sentence_source 'aligned'" in check_rows(to_corpus_table([bad]), GERMAN, "t")[0]
    bad = dict(rows[0], answer_sentence_source="source")
    assert "translated is True" in check_rows(to_corpus_table([bad]), GERMAN, "t")[0]
    bad = dict(rows[0], answer_sentence=7)
    assert any("outside the 3 sentences" in e for e in check_rows(to_corpus_table([bad]), GERMAN, "t"))


# --------------------------------------------------------------------------- the real tiny model


def sample(path: Path, passages: int = 3) -> Path:
    from importlib import resources

    data = json.loads(resources.files("polyqa.data").joinpath("default_sample.json").read_text("utf-8"))
    data["data"] = data["data"][:passages]
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def tiny_config(tmp: Path, tiny_model, source: Path, cache: Path, **overrides) -> dict:
    return {"name": "projection", "sources": [{"kind": "squad_json", "path": str(source), "license": "CC0-1.0"}],
            "languages": ["de", "fr"], "shard_rows": 50, "model": "tiny",
            "tiny_model_dir": str(tiny_model.hf_dir.parent), "cache": str(cache),
            "decoding": {"beam_size": 1, "max_length_ratio": 1.2, "max_length_extra": 4}, **overrides}


def test_marked_sentences_go_through_the_engine_cache_and_statistics(tmp_path, tiny_model):
    source = sample(tmp_path / "sample.json")
    on = build_corpus(tiny_config(tmp_path, tiny_model, source, tmp_path / "on.sqlite"), tmp_path / "on")
    off = build_corpus(tiny_config(tmp_path, tiny_model, source, tmp_path / "off.sqlite",
                                   projection={"markers": False}), tmp_path / "off")
    english = read_language(tmp_path / "on", "eng_Latn").to_pylist()
    records = [dict(r, translations=None) for r in english]
    marked = {marked_segment(r, MARKERS) for r in records} - {None}
    assert marked  # one per question whose answer lies in one sentence
    for lang in ("deu_Latn", "fra_Latn"):
        work_on, work_off = on.translation_per_language()[lang], off.translation_per_language()[lang]
        assert work_on["unique_segments"] - work_off["unique_segments"] == len(marked)
        assert work_on["source_tokens"] > work_off["source_tokens"]
        stats = on.statistics()[lang]
        assert stats["answer_sentence"] == {SENTENCE_ALIGNED: len(records)}
        assert sum(stats["markers"].values()) == len(records) and off.statistics()[lang]["markers"] == {}
        assert stats["projection"].get(PROJECTION_MARKER, 0) == stats["markers"].get(MARKER_PROJECTED, 0)
        assert off.statistics()[lang]["answer_sentence"] == {SENTENCE_ALIGNED: len(records)}
    assert on["schema_version"] == "1.1" and validate_corpus(tmp_path / "on").ok
    card = (tmp_path / "on" / "README.md").read_text("utf-8")
    assert "| German | `deu_Latn` | 15 | 15 | " in card and "span marker" in card and "Marker projection" in card
    # The marked sentences are in the translation cache like every other segment.
    again = build_corpus(tiny_config(tmp_path, tiny_model, source, tmp_path / "on.sqlite"), tmp_path / "again")
    for lang, work in again.translation_per_language().items():
        assert work["translated"] == 0 and work["cache_hits"] == on.translation_per_language()[lang]["unique_segments"]


WORDS = ["harbour", "lamp", "stone", "tower", "keeper", "ships", "night", "light", "coast", "wall", "fire",
         "island", "king", "city", "mirror", "north", "storm", "bronze", "statue", "seven", "1850", "Pharos"]


@st.composite
def squad_sources(draw) -> dict:
    """SQuAD JSON: passages of random sentences; answers inside one sentence or across two."""
    articles = []
    for a in range(draw(st.integers(1, 2))):
        paragraphs = []
        for p in range(draw(st.integers(1, 2))):
            sentences = [" ".join(draw(st.lists(st.sampled_from(WORDS), min_size=3, max_size=8))).capitalize() + "."
                         for _ in range(draw(st.integers(1, 4)))]
            context = " ".join(sentences)
            starts = [sum(len(s) + 1 for s in sentences[:i]) for i in range(len(sentences))]
            qas = []
            for q in range(draw(st.integers(1, 3))):
                i = draw(st.integers(0, len(sentences) - 1))
                words = sentences[i].rstrip(".").split(" ")
                first = draw(st.integers(0, len(words) - 1))
                last = draw(st.integers(first, len(words) - 1))
                begin = starts[i] + len(" ".join(words[:first])) + (1 if first else 0)
                end = starts[i] + len(" ".join(words[:last + 1]))
                if i + 1 < len(sentences) and draw(st.booleans()):
                    end = starts[i + 1] + len(sentences[i + 1].split(" ")[0])  # across the boundary
                qas.append({"id": f"a{a}p{p}q{q}", "question": f"What is {' '.join(words[:2])} number {q}?",
                            "answers": [{"text": context[begin:end], "answer_start": begin}]})
            paragraphs.append({"context": context, "qas": qas})
        articles.append({"title": f"Article {a}", "paragraphs": paragraphs})
    return {"version": "test", "data": articles}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=squad_sources())
def test_property_translated_rows_keep_the_english_answer_sentence(data, tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("prop")
    source = tmp / "source.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    config = tiny_config(tmp, tiny_model, source, tmp_path_factory.getbasetemp() / "prop-cache.sqlite",
                         shard_rows=4)
    build_corpus(config, tmp / "corpus")
    assert validate_corpus(tmp / "corpus").ok
    english = read_language(tmp / "corpus", "eng_Latn").to_pylist()
    assert english
    for lang in ("deu_Latn", "fra_Latn"):
        translated = read_language(tmp / "corpus", lang).to_pylist()
        assert [r["qa_id"] for r in translated] == [r["qa_id"] for r in english]
        for en, tr in zip(english, translated):
            if en["answer_sentence"] is not None:
                assert tr["answer_sentence"] == en["answer_sentence"]
                assert tr["answer_sentence_source"] == SENTENCE_ALIGNED
            assert len(tr["sentences"]) == len(en["sentences"])


def test_pyarrow_schema_has_the_new_column():
    field = CORPUS_SCHEMA.field("answer_sentence_source")
    assert field.type == pa.string() and not field.nullable
    assert CORPUS_SCHEMA.metadata[b"polyqa.schema_version"] == b"1.1"
