"""Sentence segmentation of passages (pysbd) with exact character offsets.

Passages are translated sentence by sentence; keeping the boundaries lets a
translated passage be the join of its translated sentences, with a known
sentence list (the retrieval candidates of LAReQA-style evaluation).

Invariant: the sentences of ``text`` cover every non-whitespace character, the
whitespace between two sentences belongs to neither (it is the separator), and
``join_sentences([s.text ...], separators(text, sentences))`` gives back
``text`` without its leading and trailing whitespace (exactly ``text`` when it
has none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from polyqa.languages import ENGLISH

# Scripts written without spaces between sentences.
UNSPACED_LANGUAGES = frozenset(
    {"zho_Hans", "zho_Hant", "jpn_Jpan", "tha_Thai", "yue_Hant", "mya_Mymr", "khm_Khmr", "lao_Laoo"}
)


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int  # passage[start:end] == text


@lru_cache(maxsize=None)
def _segmenter(iso_code: str):
    import pysbd

    # clean=False: pysbd must not rewrite the text, offsets refer to the original.
    return pysbd.Segmenter(language=iso_code, clean=False, char_span=True)


@lru_cache(maxsize=None)
def _pysbd_language(lang: str) -> str:
    """pysbd's rules for ``lang`` when it has them, English rules otherwise."""
    from pysbd.languages import LANGUAGE_CODES

    from polyqa.languages import iso639_1, normalize

    code = iso639_1(normalize(lang))  # UnknownLanguageError names a bad code
    return code if code in LANGUAGE_CODES else "en"


def _strip_span(text: str, start: int, end: int) -> Sentence | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Sentence(text[start:end], start, end) if end > start else None


def split_sentences(text: str, lang: str = ENGLISH) -> list[Sentence]:
    """Sentences of ``text`` with offsets; whitespace between sentences is in no sentence."""
    if not text or text.isspace():
        return []
    spans = _segmenter(_pysbd_language(lang)).segment(text)
    # Only pysbd's cut points are used; the sentences are rebuilt from the
    # original text between cuts, so no character can be lost or altered even
    # if pysbd's own span text drifts from the input.
    cuts = sorted({span.end for span in spans if 0 < span.end < len(text)})
    sentences: list[Sentence] = []
    start = 0
    for end in [*cuts, len(text)]:
        sentence = _strip_span(text, start, end)
        if sentence is not None:
            sentences.append(sentence)
        start = end
    return sentences


def separators(text: str, sentences: Sequence[Sentence]) -> list[str]:
    """The whitespace between consecutive sentences of ``text``."""
    return [text[a.end : b.start] for a, b in zip(sentences, sentences[1:])]


def join_sentences(sentences: Sequence[str], separators: Sequence[str]) -> str:
    """``s0 + sep0 + s1 + sep1 + ... + sN``."""
    if len(separators) != max(len(sentences) - 1, 0):
        raise ValueError(
            f"join_sentences: {len(sentences)} sentences need {max(len(sentences) - 1, 0)} separators, "
            f"got {len(separators)}"
        )
    parts: list[str] = []
    for i, sentence in enumerate(sentences):
        if i:
            parts.append(separators[i - 1])
        parts.append(sentence)
    return "".join(parts)


def target_separators(lang: str, source_separators: Sequence[str] | None, count: int) -> list[str]:
    """Separators for ``count`` translated sentences in ``lang``.

    Spaced scripts reuse the source separators (so paragraph breaks survive) or a
    single space; unspaced scripts (Chinese, Japanese, Thai, ...) join with nothing
    but keep a line break where the source had one.
    """
    from polyqa.languages import normalize

    needed = max(count - 1, 0)
    if source_separators is not None and len(source_separators) != needed:
        raise ValueError(f"{count} sentences need {needed} separators, got {len(source_separators)}")
    source = list(source_separators) if source_separators is not None else [" "] * needed
    if normalize(lang) in UNSPACED_LANGUAGES:
        return ["\n" if "\n" in sep else "" for sep in source]
    return [sep if sep else " " for sep in source]


def join_translated(
    sentences: Sequence[str], lang: str, source_separators: Sequence[str] | None = None
) -> tuple[str, list[int]]:
    """A translated passage and the start offset of each of its sentences.

    Sentences are stripped of surrounding whitespace first, so
    ``passage[starts[i]:starts[i] + len(stripped_i)]`` is sentence ``i``.
    """
    cleaned = [s.strip() for s in sentences]
    seps = target_separators(lang, source_separators, len(cleaned))
    starts: list[int] = []
    position = 0
    for i, sentence in enumerate(cleaned):
        if i:
            position += len(seps[i - 1])
        starts.append(position)
        position += len(sentence)
    return join_sentences(cleaned, seps), starts
