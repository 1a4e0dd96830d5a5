"""Normalisation of source records into one QA record, with stable ids, dedup and a leakage guard.

Every record either becomes a :class:`QARecord`, goes to the quarantine
(:class:`~polyqa.sources.base.Quarantined`, with file, row, field and reason),
or is excluded by the leakage guard; :class:`Normalizer` counts all three.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyqa.languages import ENGLISH
from polyqa.sources.base import Quarantined, RawRecord, SourceItem, reason, reason_code, type_name

_SPACE_RE = re.compile(r"\s+")


def text_key(text: str) -> str:
    """Hash of a text up to case, Unicode form and whitespace (for dedup and leakage)."""
    canonical = _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()


def stable_id(*parts: str) -> str:
    """A short id that depends only on its parts (so reruns and other machines agree)."""
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]


@dataclass
class LangText:
    """One language's version of a QA pair."""

    question: str
    passage: str
    answer_text: str
    answer_start: int
    title: str | None = None
    sentences: list[str] | None = None  # given by the source (LAReQA); else segmented later
    sentence_starts: list[int] | None = None


@dataclass
class QARecord:
    qa_id: str
    passage_id: str
    source: str
    license: str | None
    english: LangText
    translations: dict[str, LangText] = field(default_factory=dict)  # imported parallel versions


def locate_answer(passage: str, text: str, start: int | None) -> int | None:
    """The answer's offset: the given one if it matches, else the occurrence nearest to it."""
    if start is not None and 0 <= start and passage[start:start + len(text)] == text:
        return start
    hits = [m.start() for m in re.finditer(re.escape(text), passage)]
    if not hits:
        return None
    if start is None:
        return hits[0]
    return min(hits, key=lambda h: abs(h - start))


def _text_problem(name: str, value: Any) -> tuple[str, str] | None:
    """(code, detail) when ``value`` is not a non-blank string: missing, of another type, or empty."""
    if value is None:
        return f"{name}_missing", f"{name} is missing"
    if not isinstance(value, str):
        return f"{name}_type", f"{name} is {type_name(value)}, not a string"
    if not value.strip():
        return f"{name}_empty", f"{name} is empty"
    return None


def check_text(rec: RawRecord, location: str) -> LangText | Quarantined:
    """Validate one language version; the reason's code names the field and the problem."""

    def bad(field_name: str, code: str, detail: str) -> Quarantined:
        return Quarantined(location, rec.row, field_name, reason(code, detail), rec.raw)

    for name, value in (("question", rec.question), ("passage", rec.passage)):
        problem = _text_problem(name, value)
        if problem is not None:
            return bad(name, *problem)
    if rec.title is not None and not isinstance(rec.title, str):
        return bad("title", "title_type", f"title is {type_name(rec.title)}, not a string")
    if rec.answers is None:
        return bad("answers", "answers_missing", "answers is missing")
    for i, answer in enumerate(rec.answers):
        if not isinstance(answer.text, str):
            return bad("answers", "answers_type", f"answer {i} text is {type_name(answer.text)}, not a string")
    given = [a for a in rec.answers if a.text.strip()]
    if not given:
        return bad("answers", "answers_empty", "no answer given" if not rec.answers else "every answer is empty")
    chosen = None
    for answer in given:
        start = locate_answer(rec.passage, answer.text, answer.start)
        if start is not None:
            chosen = (answer.text, start)
            break
    if chosen is None:
        return bad("answers", "answer_not_found", f"answer {given[0].text!r} not found in the passage")
    sentences, starts = rec.sentences, rec.sentence_starts
    if sentences is not None and not _sentences_fit(rec.passage, sentences, starts or []):
        sentences = starts = None  # inconsistent breaks: segment the passage ourselves instead
    return LangText(rec.question.strip(), rec.passage, chosen[0], chosen[1], rec.title, sentences, starts)


def _sentences_fit(passage: str, sentences: list[str], starts: list[int]) -> bool:
    return len(sentences) == len(starts) and all(
        passage[s:s + len(t)] == t for s, t in zip(starts, sentences)
    )


class LeakageGuard:
    """Passages of evaluation sets (SQuAD/LAReQA JSON files or folders of them), by text hash."""

    def __init__(self, paths: Iterable[str | Path] = ()):
        from polyqa.paths import expand
        from polyqa.sources.squad_json import iter_paragraphs, load_squad_json

        self.paths = [expand(p) for p in paths]  # ~ and $POLYQA_DATA_DIR, as everywhere in configs
        self.keys: set[str] = set()
        for path in self.paths:
            p = Path(path)
            files = sorted(p.rglob("*.json")) if p.is_dir() else [p]
            for file in files:
                data = load_squad_json(file)
                for _, _, paragraph in iter_paragraphs(data, str(file)):
                    context = paragraph.get("context") if isinstance(paragraph, dict) else None
                    if isinstance(context, str):
                        self.keys.add(text_key(context))

    def excludes(self, passage: str) -> bool:
        return text_key(passage) in self.keys


class Normalizer:
    """Turns source items into QARecords; counts kept, quarantined, duplicate and excluded rows."""

    def __init__(self, leakage: LeakageGuard | None = None, required_languages: Iterable[str] = (),
                 dedup_questions: bool = True):
        self.leakage = leakage
        # Same question on the same passage under another id counts as a duplicate unless disabled
        # (evaluation sets such as XQuAD keep a few such pairs under distinct ids).
        self.dedup_questions = dedup_questions
        # Languages every imported record must have when there is no MT to fill gaps.
        self.required_languages = list(required_languages)
        self.counts: Counter[str] = Counter()
        self.by_source: Counter[str] = Counter()
        self._seen_ids: set[str] = set()
        self._seen_pairs: set[str] = set()

    def __call__(self, items: Iterable[SourceItem], titles: Iterable[str] | None = None,
                 exclude_titles: Iterable[str] | None = None) -> Iterator[QARecord | Quarantined]:
        """Normalise ``items``; ``titles``/``exclude_titles`` select articles (train/eval splits)."""
        keep = set(titles) if titles is not None else None
        drop = set(exclude_titles or ())
        for item in items:
            self.counts["read"] += 1
            if isinstance(item, RawRecord) and (
                (keep is not None and item.title not in keep) or item.title in drop
            ):
                self.counts["title_excluded"] += 1
                continue
            out = self.one(item)
            if out is None:
                self.counts["leakage_excluded"] += 1
                continue
            if isinstance(out, Quarantined):
                self.counts["quarantined"] += 1
                if reason_code(out.reason).startswith("duplicate"):
                    self.counts["duplicates"] += 1
            else:
                self.counts["kept"] += 1
                self.by_source[out.source] += 1
            yield out

    def one(self, item: SourceItem) -> QARecord | Quarantined | None:
        if isinstance(item, Quarantined):
            return item
        location = item.location or item.source
        english = check_text(item, location)
        if isinstance(english, Quarantined):
            return english
        if self.leakage is not None and self.leakage.excludes(english.passage):
            return None
        translations: dict[str, LangText] = {}
        for lang, other in item.translations.items():
            checked = check_text(other, f"{location} [{lang}]")
            if isinstance(checked, Quarantined):
                checked.reason = f"{checked.reason} (in {lang})"  # the code stays first: counted with English's
                return checked
            translations[lang] = checked
        missing = [lang for lang in self.required_languages
                   if lang != ENGLISH and lang not in translations]
        if missing:
            return Quarantined(location, item.row, None,
                               reason("language_missing",
                                      f"no text in {', '.join(missing)} and no translation model configured"),
                               item.raw)
        base = item.original_id if item.original_id is not None else english.question + "\x1f" + english.passage
        qa_id = stable_id(item.source, base)
        passage_key = text_key(english.passage)
        pair_key = stable_id(passage_key, text_key(english.question))
        if qa_id in self._seen_ids:
            return Quarantined(location, item.row, "id",
                               reason("duplicate_id", f"id {item.original_id!r} seen before" if item.original_id
                                      is not None else "the same question and passage seen before (no id)"),
                               item.raw)
        if self.dedup_questions and pair_key in self._seen_pairs:
            return Quarantined(location, item.row, "question",
                               reason("duplicate_question", "the same question on the same passage seen before "
                                      "under another id"), item.raw)
        self._seen_ids.add(qa_id)
        self._seen_pairs.add(pair_key)
        return QARecord(qa_id, passage_key[:20], item.source, item.license, english, translations)

    def stats(self) -> dict[str, Any]:
        keys = ("read", "kept", "quarantined", "duplicates", "leakage_excluded", "title_excluded")
        return {**{k: int(self.counts.get(k, 0)) for k in keys}, "kept_by_source": dict(self.by_source)}
