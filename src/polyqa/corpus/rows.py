"""Row assembly: staged English records -> corpus rows of one language, and their statistics.

Pure functions of the records and the segment translations; no I/O, no engine.

A translated row's ``answer_sentence`` is the English answer's sentence index:
passages are translated sentence by sentence, so it holds whether or not the
answer span is found. The span (``answer_start``/``answer_text``) is projected
by, in order: markers (the answer's sentence translated once more with the
answer between markers, :func:`marked_segment`), the translated answer searched
in the aligned sentence, then in the whole passage.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from polyqa.corpus.schema import PROJECTION_SOURCE, SENTENCE_ALIGNED, SENTENCE_NONE, SENTENCE_SOURCE
from polyqa.languages import ENGLISH
from polyqa.corpus.quality import (
    MARKER_NOT_MARKED,
    ProjectionSettings,
    QualityThresholds,
    mark_answer,
    project_answer,
    project_marked,
    score_text,
)

# Not a column: what became of a translated row's marked sentence, for shard_statistics
# (the writer keeps only CORPUS_SCHEMA's columns).
MARKER_KEY = "_marker"


def sentence_index(starts: list[int], sentences: list[str], offset: int | None) -> int | None:
    """Index of the sentence holding character ``offset`` (the last one starting before it)."""
    if offset is None or not starts:
        return None
    best = None
    for i, start in enumerate(starts):
        if start <= offset:
            best = i
        else:
            break
    return best


def _neutral_quality() -> dict[str, Any]:
    return {"quality_langid": None, "quality_langid_score": None, "quality_length_ratio": None,
            "quality_repetition": None, "quality_flags": [], "quality_pass": True}


def is_imported(record: Mapping[str, Any], lang: str) -> bool:
    """True when the record brings its own text in ``lang`` (English always; others from parallel imports)."""
    return lang == ENGLISH or (record["translations"] is not None and lang in json.loads(record["translations"]))


def original_row(record: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """A row of text that was not machine translated (English, or an imported language)."""
    if lang == ENGLISH:
        text = record
        title = record["title"]
    else:
        text = json.loads(record["translations"])[lang]
        title = text.get("title") or record["title"]
    answer_sentence = sentence_index(text["sentence_starts"], text["sentences"], text["answer_start"])
    return {
        "qa_id": record["qa_id"], "passage_id": record["passage_id"], "lang": lang, "title": title,
        "question": text["question"], "passage": text["passage"], "sentences": text["sentences"],
        "sentence_starts": text["sentence_starts"], "answer_text": text["answer_text"],
        "answer_start": text["answer_start"],
        "answer_sentence": answer_sentence,
        "answer_sentence_source": SENTENCE_NONE if answer_sentence is None else SENTENCE_SOURCE,
        "answer_projection": PROJECTION_SOURCE, "source": record["source"], "license": record["license"],
        "translated": False, **_neutral_quality(),
    }


def marked_segment(record: Mapping[str, Any], settings: ProjectionSettings | None) -> str | None:
    """The English answer's sentence with the answer between markers, or None when there is none.

    None when markers are off, the record has no answer offset, or the answer does not lie
    within one sentence (each sentence is translated alone, so markers across two never meet).
    """
    if settings is None or not settings.markers or record["answer_start"] is None or not record["answer_text"]:
        return None
    starts, sentences = record["sentence_starts"], record["sentences"]
    index = sentence_index(starts, sentences, record["answer_start"])
    if index is None:
        return None
    begin = record["answer_start"] - starts[index]
    return mark_answer(sentences[index], begin, begin + len(record["answer_text"]), settings)


def translated_row(record: Mapping[str, Any], lang: str, translation: Mapping[str, str],
                   thresholds: QualityThresholds, markers: ProjectionSettings | None = None) -> dict[str, Any]:
    """A machine-translated row: sentences joined, answer sentence aligned, span projected, quality scored.

    ``markers``: marker projection settings; ``translation`` must then hold the
    :func:`marked_segment` of the record too (:func:`unique_segments` with the same settings lists it).
    """
    from polyqa.segment import join_translated

    english_starts, english_sentences = record["sentence_starts"], record["sentences"]
    separators = [record["passage"][english_starts[i] + len(english_sentences[i]):english_starts[i + 1]]
                  for i in range(len(english_sentences) - 1)]
    # join_translated strips each sentence; the row keeps the stripped ones so offsets hold.
    sentences = [translation[s].strip() for s in english_sentences]
    passage, starts = join_translated(sentences, lang, separators)
    question = translation[record["question"]]
    answer = translation[record["answer_text"]]
    aligned = sentence_index(english_starts, english_sentences, record["answer_start"])
    if aligned is not None and aligned >= len(sentences):
        aligned = None
    projection = None
    marker_outcome = None
    if markers is not None and markers.markers:
        marked = marked_segment(record, markers)
        marker_outcome = MARKER_NOT_MARKED
        if marked is not None and aligned is not None:
            found, marker_outcome = project_marked(translation[marked], sentences[aligned], markers)
            if found.start is not None:
                found.start += starts[aligned]
                projection = found
    if projection is None and aligned is not None:
        local = project_answer(answer, sentences[aligned], thresholds.fuzzy_threshold)
        if local.start is not None:
            local.start += starts[aligned]
            projection = local
    if projection is None:
        projection = project_answer(answer, passage, thresholds.fuzzy_threshold)
    scores = score_text(question, passage, record["question"], record["passage"], lang, thresholds)
    if not answer.strip():
        scores.flags.append("empty_answer")
    return {
        "qa_id": record["qa_id"], "passage_id": record["passage_id"], "lang": lang, "title": record["title"],
        "question": question, "passage": passage, "sentences": sentences, "sentence_starts": starts,
        "answer_text": projection.text if projection.start is not None else answer,
        "answer_start": projection.start,
        "answer_sentence": aligned,
        "answer_sentence_source": SENTENCE_NONE if aligned is None else SENTENCE_ALIGNED,
        "answer_projection": projection.kind, "source": record["source"], "license": record["license"],
        "translated": True, "quality_langid": scores.langid, "quality_langid_score": scores.langid_score,
        "quality_length_ratio": scores.length_ratio, "quality_repetition": scores.repetition,
        "quality_flags": list(scores.flags), "quality_pass": scores.passed, MARKER_KEY: marker_outcome,
    }


def unique_segments(records: Iterable[Mapping[str, Any]], markers: ProjectionSettings | None = None) -> list[str]:
    """The shard's distinct English segments, first-seen order: questions, passage sentences,
    answers and, with ``markers`` on, each answer's marked sentence (one more segment per question)."""
    seen: dict[str, None] = {}
    for r in records:
        seen.setdefault(r["question"], None)
        for sentence in r["sentences"]:
            seen.setdefault(sentence, None)
        seen.setdefault(r["answer_text"], None)
        marked = marked_segment(r, markers)
        if marked is not None:
            seen.setdefault(marked, None)
    return list(seen)


def language_rows(records: list[Mapping[str, Any]], lang: str, translation: Mapping[str, str],
                  thresholds: QualityThresholds, markers: ProjectionSettings | None = None) -> list[dict[str, Any]]:
    """The rows of ``records`` in ``lang``: own text where the record has it, else translated."""
    return [original_row(r, lang) if is_imported(r, lang)
            else translated_row(r, lang, translation, thresholds, markers) for r in records]


@dataclass(frozen=True)
class ShardStats:
    """Counts over one shard's rows (summed per language in the manifest)."""

    rows: int
    translated: int
    quality_pass: int
    quality_flags: dict[str, int]
    projection: dict[str, int]  # rows per answer_projection
    langid_scored: int
    passage_chars: int
    question_chars: int
    answer_sentence: dict[str, int] = field(default_factory=dict)  # rows per answer_sentence_source
    markers: dict[str, int] = field(default_factory=dict)  # translated rows per MARKER_* outcome

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def shard_statistics(rows: list[Mapping[str, Any]]) -> ShardStats:
    flags: Counter[str] = Counter()
    for r in rows:
        flags.update(r["quality_flags"])
    return ShardStats(
        rows=len(rows),
        translated=sum(1 for r in rows if r["translated"]),
        quality_pass=sum(1 for r in rows if r["quality_pass"]),
        quality_flags=dict(flags),
        projection=dict(Counter(r["answer_projection"] for r in rows)),
        langid_scored=sum(1 for r in rows if r["quality_langid_score"] is not None),
        passage_chars=sum(len(r["passage"]) for r in rows),
        question_chars=sum(len(r["question"]) for r in rows),
        answer_sentence=dict(Counter(r["answer_sentence_source"] for r in rows)),
        markers=dict(Counter(r[MARKER_KEY] for r in rows if r.get(MARKER_KEY) is not None)),
    )
