"""SQuAD-style JSON (``{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}``), local or URL.

LAReQA files (XQuAD-R, MLQA-R) are SQuAD files whose paragraphs also carry
``sentences`` and ``sentence_breaks``; :mod:`polyqa.sources.lareqa` reads those and
they become the record's sentence list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from polyqa.sources.base import (
    FieldTypeError,
    Quarantined,
    RawRecord,
    SourceError,
    SourceItem,
    parse_answers,
    reason,
    register_source,
    source_id,
    type_name,
)
from polyqa.sources.lareqa import given_sentences


def package_path(location: str) -> Path:
    """``package://polyqa.data/file.json`` -> the file shipped inside the installed package."""
    from importlib import resources

    package, _, name = location[len("package://"):].partition("/")
    return Path(str(resources.files(package).joinpath(name)))


def load_squad_json(location: str | Path) -> dict[str, Any]:
    """The parsed file; URLs and remote paths go through fsspec (bundled with datasets)."""
    location = str(location)
    if location.startswith("package://"):
        location = str(package_path(location))
    try:
        if location.startswith(("http://", "https://")):
            import urllib.request

            with urllib.request.urlopen(location, timeout=60) as response:
                data = json.load(response)
        elif "://" in location:  # other remote file systems (s3://, gs://, ...) through fsspec
            import fsspec

            with fsspec.open(location, "rt", encoding="utf-8") as f:
                data = json.load(f)
        else:
            with open(location, encoding="utf-8") as f:
                data = json.load(f)
    except FileNotFoundError:
        raise SourceError(location, "file not found") from None
    except OSError as exc:  # urllib errors (HTTP status, connection) are OSErrors
        raise SourceError(location, f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SourceError(location, f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise SourceError(location, f"not UTF-8 text ({exc.reason} at byte {exc.start}): save the file as UTF-8"
                          ) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("data"), list):
        raise SourceError(location, "not a SQuAD-style file: expected an object with a 'data' list", field="data")
    return data


def iter_paragraphs(data: Mapping[str, Any], location: str) -> Iterator[tuple[int, str | None, Mapping[str, Any]]]:
    """(article index, title, paragraph) in file order."""
    for a, article in enumerate(data["data"]):
        if not isinstance(article, Mapping) or not isinstance(article.get("paragraphs"), list):
            raise SourceError(location, "article without a 'paragraphs' list", row=a, field="paragraphs")
        for paragraph in article["paragraphs"]:
            yield a, article.get("title"), paragraph


def iter_squad_records(location: str | Path, *, name: str, license: str | None) -> Iterator[SourceItem]:
    location = str(location)
    data = load_squad_json(location)
    row = 0
    for a, title, paragraph in iter_paragraphs(data, location):
        if not isinstance(paragraph, Mapping):
            yield Quarantined(location, row, "paragraphs",
                              reason("paragraph_type", f"paragraph is {type_name(paragraph)}, not an object"),
                              paragraph)
            continue
        qas = paragraph.get("qas")
        if qas is not None and not isinstance(qas, list):
            yield Quarantined(location, row, "qas", reason("qas_type", f"qas is {type_name(qas)}, not a list"),
                              paragraph)
            continue
        context = paragraph.get("context")
        given = given_sentences(paragraph)
        for qa in qas or []:
            if not isinstance(qa, Mapping):
                yield Quarantined(location, row, "qas",
                                  reason("qa_type", f"question entry is {type_name(qa)}, not an object"), qa)
                row += 1
                continue
            try:
                original_id = source_id(qa.get("id"))
                answers = parse_answers(qa["answers"]) if qa.get("answers") is not None else None
            except FieldTypeError as exc:
                yield Quarantined(location, row, exc.field, exc.reason, qa)
                row += 1
                continue
            yield RawRecord(
                source=name,
                row=row,
                original_id=original_id,
                question=qa.get("question"),
                passage=context,
                answers=answers,
                title=title,
                license=license,
                sentences=given[0] if given else None,
                sentence_starts=given[1] if given else None,
                raw={"title": title, "context": context, **qa},
                location=location,
            )
            row += 1


@register_source("squad_json")
def open_squad_json(spec: Mapping[str, Any]) -> Iterator[SourceItem]:
    """``{kind: squad_json, path: FILE_OR_URL, name?: str, license?: str}``."""
    if "path" not in spec:
        raise SourceError("config", "squad_json source needs a 'path'", field="path")
    name = spec.get("name") or Path(str(spec["path"])).stem
    return iter_squad_records(spec["path"], name=name, license=spec.get("license"))
