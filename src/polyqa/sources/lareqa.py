"""The LAReQA format (XQuAD-R, MLQA-R): the one reader for corpus sources, evaluation and the study.

A LAReQA set is a folder of ``<lang>.json`` files, one per language, each a SQuAD
v1.1 file (``data[].{title, paragraphs[].{context, qas[].{id, question,
answers[].{text, answer_start}}}}``) whose paragraphs also carry ``sentences`` and
``sentence_breaks`` (``[start, end)`` character offsets into ``context``). A
question's *answer sentence* is the sentence whose span holds its first answer's
``answer_start``.

- :func:`language_files`: the folder's files by NLLB code
- :func:`read_paragraphs`: a file's paragraphs with sentences, breaks and questions (strict)
- :func:`given_sentences`: a SQuAD paragraph's LAReQA sentences, if it has usable ones (lenient)
- :func:`answer_sentence`: the sentence holding a character offset
- :func:`article_titles`: the article titles of one language file (article splits)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyqa import languages as L
from polyqa import storage
from polyqa.languages import ENGLISH
from polyqa.sources.base import SourceError


class LareqaFormatError(SourceError):
    """A LAReQA file that breaks the format; the message names the file and the JSON path."""

    def __init__(self, where: str, message: str):
        super().__init__(where, message)


class LanguageFileNotFound(SourceError, FileNotFoundError):
    """A folder without the requested ``<lang>.json`` file (both a SourceError and a FileNotFoundError)."""


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    answer_start: int | None  # first answer's offset; None without answers
    answer_sentence: int | None  # index into the paragraph's sentences; None when unusable
    problem: str | None  # why ``answer_sentence`` is None
    where: str  # "<file>: data[a].paragraphs[p].qas[q]"


@dataclass(frozen=True)
class Paragraph:
    article: int  # index in ``data``
    index: int  # index in the article's ``paragraphs``
    title: str  # "" when the article has none
    context: str
    sentences: tuple[str, ...]
    breaks: tuple[tuple[int, int], ...]
    questions: tuple[Question, ...]
    where: str  # "<file>: data[a].paragraphs[p]"


# --------------------------------------------------------------------------- files


def _file_language(path: Path) -> str | None:
    """NLLB code of ``<lang>.json`` (also ``<set>-<lang>.json`` / ``<set>_<lang>.json``), or None."""
    stem = path.stem
    for candidate in (stem, stem.split("-")[-1].split("_")[-1]):
        try:
            return L.normalize(candidate)
        except L.UnknownLanguageError:
            continue
    return None


def language_files(folder: str | Path, languages: Iterable[str] | None = None) -> dict[str, Path]:
    """``{nllb_code: file}`` of the folder's language files, or of ``languages`` (any spelling) in that order.

    Without ``languages``: every ``*.json`` named after a language, in file-name order;
    other JSON files are ignored.
    """
    folder = storage.as_path(folder)
    if not folder.is_dir():
        raise LanguageFileNotFound(str(folder), "not a folder: a LAReQA set is a folder of <lang>.json files")
    available: dict[str, Path] = {}
    for path in sorted(folder.glob("*.json")):
        code = _file_language(path)
        if code is not None and code not in available:
            available[code] = path
    wanted = L.normalize_many(list(languages)) if languages is not None else None
    if not available:
        raise LanguageFileNotFound(str(folder), "no <lang>.json files" + (f" (wanted {wanted})" if wanted else ""))
    if wanted is None:
        return available
    missing = [code for code in wanted if code not in available]
    if missing:
        raise LanguageFileNotFound(
            str(folder), f"no file for language(s) {missing}; found {sorted(p.name for p in available.values())}")
    return {code: available[code] for code in wanted}


def read_json(path: str | Path) -> Mapping[str, Any]:
    """A LAReQA/SQuAD file's top-level object (it must have a ``data`` list)."""
    path = storage.as_path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LanguageFileNotFound(str(path), "file not found") from None
    except json.JSONDecodeError as exc:
        raise LareqaFormatError(str(path), f"not valid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise LareqaFormatError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start}): save the file "
                                "as UTF-8") from None
    _field(doc, "data", list, str(path))
    return doc


# --------------------------------------------------------------------------- paragraphs


def _field(obj: Any, key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise LareqaFormatError(where, f"missing field {key!r}")
    value = obj[key]
    if not isinstance(value, typ) or isinstance(value, bool):
        names = "/".join(t.__name__ for t in typ) if isinstance(typ, tuple) else typ.__name__
        raise LareqaFormatError(where, f"field {key!r} should be {names}, got {type(value).__name__}")
    return value


def sentence_spans(paragraph: Mapping[str, Any], where: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The paragraph's ``sentences`` and ``sentence_breaks``, checked; LareqaFormatError otherwise."""
    sentences = _field(paragraph, "sentences", list, where)
    breaks = _field(paragraph, "sentence_breaks", list, where)
    if len(sentences) != len(breaks):
        raise LareqaFormatError(where, f"{len(sentences)} 'sentences' but {len(breaks)} 'sentence_breaks'")
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise LareqaFormatError(where, f"sentences[{i}] should be a string, got {type(sentence).__name__}")
    spans = []
    for i, br in enumerate(breaks):
        if not (isinstance(br, (list, tuple)) and len(br) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in br)):
            raise LareqaFormatError(where, f"sentence_breaks[{i}] should be [start, end], got {br!r}")
        spans.append((br[0], br[1]))
    return list(sentences), spans


def given_sentences(paragraph: Mapping[str, Any]) -> tuple[list[str], list[int]] | None:
    """A SQuAD paragraph's LAReQA sentences and their start offsets; None when absent or malformed.

    For sources that read plain SQuAD too: without usable breaks the corpus segments the passage itself.
    """
    if "sentences" not in paragraph or "sentence_breaks" not in paragraph:
        return None
    try:
        sentences, spans = sentence_spans(paragraph, "paragraph")
    except LareqaFormatError:
        return None
    return sentences, [start for start, _ in spans]


def answer_sentence(breaks: Sequence[Sequence[int]], offset: int) -> int | None:
    """Index of the ``[start, end)`` span holding ``offset``; None when no span does."""
    for i, (start, end) in enumerate(breaks):
        if start <= offset < end:
            return i
    return None


def _question(qa: Any, breaks: Sequence[tuple[int, int]], where: str) -> Question:
    qid = str(_field(qa, "id", (str, int), where))
    question = _field(qa, "question", str, where)
    answers = _field(qa, "answers", list, where)
    if not answers:
        return Question(qid, question, None, None, "no answers", where)
    start = _field(answers[0], "answer_start", int, f"{where}.answers[0]")
    index = answer_sentence(breaks, start)
    problem = None if index is not None else f"answer_start {start} is in no sentence_breaks span"
    return Question(qid, question, start, index, problem, where)


def parse_paragraphs(doc: Mapping[str, Any], location: str) -> Iterator[Paragraph]:
    """Every paragraph of a parsed LAReQA file, in file order; LareqaFormatError at the first broken field."""
    for a, article in enumerate(_field(doc, "data", list, location)):
        where_a = f"{location}: data[{a}]"
        paragraphs = _field(article, "paragraphs", list, where_a)
        title = article.get("title")
        title = "" if title is None else str(title)
        for p, paragraph in enumerate(paragraphs):
            where = f"{where_a}.paragraphs[{p}]"
            context = _field(paragraph, "context", str, where)
            sentences, breaks = sentence_spans(paragraph, where)
            questions = tuple(_question(qa, breaks, f"{where}.qas[{q}]")
                              for q, qa in enumerate(_field(paragraph, "qas", list, where)))
            yield Paragraph(a, p, title, context, tuple(sentences), tuple(breaks), questions, where)


def read_paragraphs(path: str | Path) -> Iterator[Paragraph]:
    """Every paragraph of one LAReQA file (see :func:`parse_paragraphs`)."""
    return parse_paragraphs(read_json(path), str(path))


def article_titles(folder: str | Path, language: str = ENGLISH) -> list[str]:
    """Sorted unique article titles of one language file of a LAReQA folder (English by default).

    Raises LanguageFileNotFound (a FileNotFoundError) without that file and LareqaFormatError
    (a ValueError) when the file is not LAReQA/SQuAD JSON or an article has no title.
    """
    path = language_files(folder, [language])[L.normalize(language)]
    doc = read_json(path)
    titles = set()
    for a, article in enumerate(doc["data"]):
        titles.add(_field(article, "title", str, f"{path}: data[{a}]"))
    return sorted(titles)
