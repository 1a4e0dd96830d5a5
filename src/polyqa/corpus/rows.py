"""Row assembly: staged English records -> corpus rows of one language, and their statistics.

Pure functions of the records and the segment translations; no I/O, no engine.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from polyqa.corpus.schema import PROJECTION_SOURCE
from polyqa.languages import ENGLISH
from polyqa.quality import QualityThresholds, project_answer, score_text


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
    return {
        "qa_id": record["qa_id"], "passage_id": record["passage_id"], "lang": lang, "title": title,
        "question": text["question"], "passage": text["passage"], "sentences": text["sentences"],
        "sentence_starts": text["sentence_starts"], "answer_text": text["answer_text"],
        "answer_start": text["answer_start"],
        "answer_sentence": sentence_index(text["sentence_starts"], text["sentences"], text["answer_start"]),
        "answer_projection": PROJECTION_SOURCE, "source": record["source"], "license": record["license"],
        "translated": False, **_neutral_quality(),
    }


def translated_row(record: Mapping[str, Any], lang: str, translation: Mapping[str, str],
                   thresholds: QualityThresholds) -> dict[str, Any]:
    """A machine-translated row: sentences joined, answer projected, quality scored."""
    from polyqa.segment import join_translated

    english_starts, english_sentences = record["sentence_starts"], record["sentences"]
    separators = [record["passage"][english_starts[i] + len(english_sentences[i]):english_starts[i + 1]]
                  for i in range(len(english_sentences) - 1)]
    # join_translated strips each sentence; the row keeps the stripped ones so offsets hold.
    sentences = [translation[s].strip() for s in english_sentences]
    passage, starts = join_translated(sentences, lang, separators)
    question = translation[record["question"]]
    answer = translation[record["answer_text"]]
    # Look in the sentence aligned with the English answer's sentence first, then everywhere.
    english_sentence = sentence_index(record["sentence_starts"], record["sentences"], record["answer_start"])
    projection = None
    if english_sentence is not None and english_sentence < len(sentences):
        local = project_answer(answer, sentences[english_sentence], thresholds.fuzzy_threshold)
        if local.start is not None:
            local.start += starts[english_sentence]
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
        "answer_sentence": sentence_index(starts, sentences, projection.start),
        "answer_projection": projection.kind, "source": record["source"], "license": record["license"],
        "translated": True, "quality_langid": scores.langid, "quality_langid_score": scores.langid_score,
        "quality_length_ratio": scores.length_ratio, "quality_repetition": scores.repetition,
        "quality_flags": list(scores.flags), "quality_pass": scores.passed,
    }


def unique_segments(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The shard's distinct English segments (questions, passage sentences, answers), first-seen order."""
    seen: dict[str, None] = {}
    for r in records:
        seen.setdefault(r["question"], None)
        for sentence in r["sentences"]:
            seen.setdefault(sentence, None)
        seen.setdefault(r["answer_text"], None)
    return list(seen)


def language_rows(records: list[Mapping[str, Any]], lang: str, translation: Mapping[str, str],
                  thresholds: QualityThresholds) -> list[dict[str, Any]]:
    """The rows of ``records`` in ``lang``: own text where the record has it, else translated."""
    return [original_row(r, lang) if is_imported(r, lang) else translated_row(r, lang, translation, thresholds)
            for r in records]


@dataclass(frozen=True)
class ShardStats:
    """Counts over one shard's rows (summed per language in the manifest)."""

    rows: int
    translated: int
    quality_pass: int
    quality_flags: dict[str, int]
    projection: dict[str, int]
    langid_scored: int
    passage_chars: int
    question_chars: int

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
    )
