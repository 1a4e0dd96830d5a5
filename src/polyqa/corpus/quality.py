"""Answer projection and quality scores of translated text.

- :func:`mark_answer` / :func:`project_marked`: marker projection (EasyProject,
  Chen et al. 2023): the answer's sentence is translated a second time with the
  answer wrapped in markers; the span read between them is located in the
  unmarked translation of that sentence.
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
    PROJECTION_MARKER,
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


@dataclass(frozen=True)
class ProjectionSettings:
    """The build config's ``projection``: marker projection on or off, and its markers.

    Square brackets are the default: NLLB copies them through translation far more
    reliably than other marker pairs (EasyProject).
    """

    markers: bool = True
    open: str = "["
    close: str = "]"

    @classmethod
    def from_config(cls, values: dict | None) -> ProjectionSettings:
        if values is not None and not isinstance(values, dict):
            raise ValueError(f"projection must be a mapping such as {{markers: true, open: '[', close: ']'}}, "
                             f"not {values!r}")
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown projection settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        settings = cls(**values)
        if not isinstance(settings.markers, bool):
            raise ValueError(f"projection 'markers' must be true or false, not {settings.markers!r}")
        for name in ("open", "close"):
            value = getattr(settings, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"projection '{name}' must be a non-blank string, not {value!r}")
        if settings.open in settings.close or settings.close in settings.open:
            raise ValueError(f"projection markers must differ and not contain each other: "
                             f"{settings.open!r}, {settings.close!r}")
        return settings

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Projection:
    start: int | None
    kind: str  # PROJECTION_* constant
    text: str | None  # the passage span matched (the answer text of the row)
    score: float | None = None


# What became of a row's marked sentence (counted per language in the manifest).
MARKER_PROJECTED = "projected"  # span read between the markers and found in the unmarked sentence
MARKER_LOST = "lost"  # a marker is missing, or they come in the wrong order
MARKER_DUPLICATED = "duplicated"  # a marker occurs more than once (repeated or nested spans)
MARKER_EMPTY = "empty"  # nothing between the markers
MARKER_NOT_IN_SENTENCE = "not_in_sentence"  # the span does not occur in the unmarked translation
MARKER_NOT_MARKED = "not_marked"  # no marked sentence: the answer crosses a sentence boundary, or the
#                                   English sentence holds a marker itself
MARKER_OUTCOMES = (MARKER_PROJECTED, MARKER_LOST, MARKER_DUPLICATED, MARKER_EMPTY, MARKER_NOT_IN_SENTENCE,
                   MARKER_NOT_MARKED)


def mark_answer(sentence: str, start: int, end: int, settings: ProjectionSettings) -> str | None:
    """``sentence`` with ``sentence[start:end]`` (outer whitespace trimmed) between the markers.

    None when the result could not be read back unambiguously: an empty span, a span outside
    the sentence, or a sentence that already holds one of the markers.
    """
    if start < 0 or end > len(sentence):
        return None
    while start < end and sentence[start].isspace():
        start += 1
    while end > start and sentence[end - 1].isspace():
        end -= 1
    if start >= end or settings.open in sentence or settings.close in sentence:
        return None
    return f"{sentence[:start]}{settings.open}{sentence[start:end]}{settings.close}{sentence[end:]}"


@dataclass(frozen=True)
class MarkedSpan:
    text: str | None  # the span between the markers (stripped), None unless outcome is usable
    position: int | None  # where the open marker stands in the marked translation
    outcome: str  # MARKER_* constant


def read_marked(marked: str, settings: ProjectionSettings) -> MarkedSpan:
    """The span between the markers of a marked translation: exactly one of each, in order, not empty."""
    opens, closes = marked.count(settings.open), marked.count(settings.close)
    if opens > 1 or closes > 1:
        return MarkedSpan(None, None, MARKER_DUPLICATED)
    begin, end = marked.find(settings.open), marked.find(settings.close)
    if begin < 0 or end < 0 or end < begin:
        return MarkedSpan(None, None, MARKER_LOST)
    text = marked[begin + len(settings.open):end].strip()
    if not text:
        return MarkedSpan(None, begin, MARKER_EMPTY)
    return MarkedSpan(text, begin, MARKER_PROJECTED)


def project_marked(marked: str, sentence: str, settings: ProjectionSettings) -> tuple[Projection, str]:
    """(projection into ``sentence``, MARKER_* outcome) from the marked translation of that sentence.

    The span must occur in ``sentence`` (the unmarked translation): verbatim, the occurrence
    nearest the marker's position, else after normalisation. Offsets are within ``sentence``.
    """
    span = read_marked(marked, settings)
    if span.text is None:
        return Projection(None, PROJECTION_NONE, None), span.outcome
    occurrences = []
    at = sentence.find(span.text)
    while at >= 0:
        occurrences.append(at)
        at = sentence.find(span.text, at + 1)
    if occurrences:
        start = min(occurrences, key=lambda k: abs(k - (span.position or 0)))
        return Projection(start, PROJECTION_MARKER, span.text, 100.0), MARKER_PROJECTED
    found = _find_normalized(span.text, sentence)
    if found is not None:
        begin, end = found
        return Projection(begin, PROJECTION_MARKER, sentence[begin:end], 100.0), MARKER_PROJECTED
    return Projection(None, PROJECTION_NONE, None), MARKER_NOT_IN_SENTENCE


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


def _find_normalized(answer: str, passage: str,
                     normalized: tuple[str, list[int]] | None = None) -> tuple[int, int] | None:
    """(begin, end) in ``passage`` of ``answer`` compared after normalisation, or None.

    ``normalized``: ``_normalized_with_map(passage)`` when the caller has it already.
    """
    norm_answer = normalize_text(answer)
    if not norm_answer:
        return None
    norm_passage, offsets = normalized or _normalized_with_map(passage)
    i = norm_passage.find(norm_answer)
    if i < 0:
        return None
    return offsets[i], offsets[i + len(norm_answer) - 1] + 1


def project_answer(answer: str, passage: str, fuzzy_threshold: float = 85.0) -> Projection:
    """Locate ``answer`` in ``passage``; ``Projection(None, "none", None)`` when not found."""
    answer_stripped = answer.strip()
    if not answer_stripped or not passage:
        return Projection(None, PROJECTION_NONE, None)
    start = passage.find(answer_stripped)
    if start >= 0:
        return Projection(start, PROJECTION_EXACT, answer_stripped, 100.0)
    norm_passage, offsets = _normalized_with_map(passage)
    found = _find_normalized(answer_stripped, passage, (norm_passage, offsets))
    if found is not None:
        begin, end = found
        return Projection(begin, PROJECTION_NORMALIZED, passage[begin:end], 100.0)
    norm_answer = normalize_text(answer_stripped)
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
