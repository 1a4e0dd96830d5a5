"""Answer projection and quality scores of translated text.

- :func:`project_answer`: find the translated answer in the translated passage:
  exact, then normalised (casefold, punctuation and whitespace), then fuzzy
  (rapidfuzz ``partial_ratio_alignment`` above a threshold).
- :func:`score_text`: language id (py3langid, mapped to NLLB codes), length
  ratio, repetition (share of repeated word n-grams), emptiness; flags name
  every failed check and ``passed`` is true when there is none.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from polyqa import languages as L
from polyqa.corpus.schema import (
    PROJECTION_EXACT,
    PROJECTION_FUZZY,
    PROJECTION_NONE,
    PROJECTION_NORMALIZED,
)


@dataclass(frozen=True)
class QualityThresholds:
    min_length_ratio: float = 0.3  # translated / English characters
    max_length_ratio: float = 3.0
    max_repetition: float = 0.5  # share of word n-grams that repeat an earlier one
    repetition_ngram: int = 3
    min_langid_score: float = 0.5  # probability of the detected language
    fuzzy_threshold: float = 85.0  # rapidfuzz partial_ratio score (0-100) for fuzzy projection

    @classmethod
    def from_config(cls, values: dict | None) -> QualityThresholds:
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown quality thresholds {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Projection:
    start: int | None
    kind: str  # PROJECTION_* constant
    text: str | None  # the passage span matched (the answer text of the row)
    score: float | None = None


_PUNCT_CATEGORIES = ("P", "S")


def _normalized_with_map(text: str) -> tuple[str, list[int]]:
    """Casefolded text without punctuation, whitespace runs collapsed; map back to original offsets."""
    chars: list[str] = []
    offsets: list[int] = []
    last_space = True
    for i, ch in enumerate(text):
        if unicodedata.category(ch)[0] in _PUNCT_CATEGORIES or ch.isspace():
            if not last_space:
                chars.append(" ")
                offsets.append(i)
                last_space = True
            continue
        for folded in ch.casefold():
            chars.append(folded)
            offsets.append(i)
        last_space = False
    while chars and chars[-1] == " ":
        chars.pop()
        offsets.pop()
    return "".join(chars), offsets


def normalize_text(text: str) -> str:
    return _normalized_with_map(text)[0]


def project_answer(answer: str, passage: str, fuzzy_threshold: float = 85.0) -> Projection:
    """Locate ``answer`` in ``passage``; ``Projection(None, "none", None)`` when not found."""
    answer_stripped = answer.strip()
    if not answer_stripped or not passage:
        return Projection(None, PROJECTION_NONE, None)
    start = passage.find(answer_stripped)
    if start >= 0:
        return Projection(start, PROJECTION_EXACT, answer_stripped, 100.0)
    norm_answer = normalize_text(answer_stripped)
    norm_passage, offsets = _normalized_with_map(passage)
    if norm_answer:
        i = norm_passage.find(norm_answer)
        if i >= 0:
            begin, end = offsets[i], offsets[i + len(norm_answer) - 1] + 1
            return Projection(begin, PROJECTION_NORMALIZED, passage[begin:end], 100.0)
    if not norm_answer or not norm_passage:
        return Projection(None, PROJECTION_NONE, None)
    from rapidfuzz import fuzz

    alignment = fuzz.partial_ratio_alignment(norm_answer, norm_passage, score_cutoff=fuzzy_threshold)
    if alignment is None or alignment.dest_end <= alignment.dest_start:
        return Projection(None, PROJECTION_NONE, None)
    begin = offsets[alignment.dest_start]
    end = offsets[alignment.dest_end - 1] + 1
    if " " in passage:  # spaced scripts: widen a partial match to whole words
        while begin > 0 and passage[begin - 1].isalnum():
            begin -= 1
        while end < len(passage) and passage[end].isalnum():
            end += 1
    span = passage[begin:end].strip()
    begin = passage.find(span, begin)
    return Projection(begin, PROJECTION_FUZZY, span, float(alignment.score))


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def identifiable_languages() -> frozenset[str]:
    """ISO 639-1 codes py3langid knows (its model ships in the wheel)."""
    return frozenset(_identifier().nb_classes)


def _langid_key(nllb_code: str) -> str | None:
    """py3langid's label for this language (ISO 639-1, else 639-3), or None if it cannot identify it."""
    for key in (L.iso639_1(nllb_code), nllb_code.split("_")[0]):
        if key in identifiable_languages():
            return key
    return None


def identify(text: str) -> tuple[str, str | None, float]:
    """(py3langid label, NLLB code or None if unmappable, probability) of the text's language."""
    label, score = _identifier().classify(text)
    try:
        code = L.normalize(label)
    except L.UnknownLanguageError:
        code = None
    return label, code, float(score)


def repetition(text: str, n: int = 3) -> float:
    """Share of word n-grams (character n-grams for unspaced scripts) that repeat an earlier one."""
    tokens = text.split()
    if len(tokens) < 2 * n and len(text) > 4 * len(tokens):  # scripts written without spaces
        tokens = [c for c in text if not c.isspace()]
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


@dataclass
class QualityScores:
    langid: str | None = None
    langid_score: float | None = None
    length_ratio: float | None = None
    repetition: float | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.flags


def score_text(
    question: str,
    passage: str,
    source_question: str,
    source_passage: str,
    target: str,
    thresholds: QualityThresholds = QualityThresholds(),
) -> QualityScores:
    """Quality of one translated row (question and passage) against its English source."""
    scores = QualityScores()
    if not question.strip():
        scores.flags.append("empty_question")
    if not passage.strip():
        scores.flags.append("empty_passage")
        return scores
    scores.length_ratio = len(passage) / max(1, len(source_passage))
    if scores.length_ratio < thresholds.min_length_ratio:
        scores.flags.append("length_ratio_low")
    elif scores.length_ratio > thresholds.max_length_ratio:
        scores.flags.append("length_ratio_high")
    scores.repetition = max(repetition(passage, thresholds.repetition_ngram),
                            repetition(question, thresholds.repetition_ngram))
    if scores.repetition > thresholds.max_repetition:
        scores.flags.append("repetition")
    expected = _langid_key(target)
    if expected is not None:  # languages py3langid cannot identify get a null score, no flag
        label, detected, probability = identify(passage)
        scores.langid = detected  # None when py3langid's label is not an NLLB language
        scores.langid_score = probability
        if label != expected:
            scores.flags.append("langid_mismatch")
        elif probability < thresholds.min_langid_score:
            scores.flags.append("langid_low_score")
    return scores
