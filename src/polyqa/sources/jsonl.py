"""JSON Lines of ``{"question", "passage", "answers"}`` (plus optional ``id``, ``title``).

``answers`` may be ``[{"text", "start"}]``, SQuAD's ``answer_start`` form, or a
list of strings (offsets are then located in the passage). Field names can be
remapped with ``columns: {question: q, passage: context, ...}``. Read line by line.
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
    get_path,
    parse_answers,
    reason,
    register_source,
    source_id,
    type_name,
)

DEFAULT_COLUMNS = {"id": "id", "question": "question", "passage": "passage", "answers": "answers",
                   "title": "title"}


def iter_mapped(rows: Iterator[tuple[int, Any]], *, location: str, name: str, license: str | None,
                columns: Mapping[str, str]) -> Iterator[SourceItem]:
    """Records from dict rows through a column mapping (shared with hf_dataset)."""
    for row, obj in rows:
        if not isinstance(obj, Mapping):
            yield Quarantined(location, row, None, reason("row_type", f"row is {type_name(obj)}, not an object"), obj)
            continue
        values: dict[str, Any] = {}
        for key, column in columns.items():
            try:
                values[key] = get_path(obj, column) if column else None
            except (KeyError, IndexError, TypeError):
                values[key] = None
        try:
            original_id = source_id(values.get("id"))
            answers = parse_answers(values["answers"], values.get("answer_starts")) \
                if values.get("answers") is not None else None
        except FieldTypeError as exc:
            yield Quarantined(location, row, columns.get(exc.field, exc.field), exc.reason, obj)
            continue
        yield RawRecord(
            source=name,
            row=row,
            original_id=original_id,
            question=values.get("question"),
            passage=values.get("passage"),
            answers=answers,
            title=values.get("title"),
            license=license,
            raw=obj,
            location=location,
        )


def _open_text(path: str):
    if path.startswith(("http://", "https://")):
        import io
        import urllib.request

        return io.TextIOWrapper(urllib.request.urlopen(path, timeout=60), encoding="utf-8")
    if "://" in path:  # other remote file systems (s3://, gs://, ...) through fsspec
        import fsspec

        return fsspec.open(path, "rt", encoding="utf-8").open()
    return open(path, encoding="utf-8")


def _read_lines(path: str) -> Iterator[tuple[int, Any]]:
    try:
        with _open_text(path) as f:
            for row, line in enumerate(f):
                if not line.strip():
                    continue
                try:
                    yield row, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield row, _BadLine(reason("invalid_json", f"column {exc.colno}: {exc.msg}"), line)
    except FileNotFoundError:
        raise SourceError(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise SourceError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start}): save the file as UTF-8"
                          ) from None
    except OSError as exc:  # urllib errors (HTTP status, connection) are OSErrors
        raise SourceError(path, f"cannot read: {exc}") from None


class _BadLine(str):
    def __new__(cls, reason: str, line: str):
        obj = super().__new__(cls, line.rstrip("\n"))
        obj.reason = reason
        return obj


@register_source("jsonl")
def open_jsonl(spec: Mapping[str, Any]) -> Iterator[SourceItem]:
    """``{kind: jsonl, path: FILE, columns?: {...}, name?, license?}``."""
    if "path" not in spec:
        raise SourceError("config", "jsonl source needs a 'path'", field="path")
    path = str(spec["path"])
    name = spec.get("name") or Path(path).stem
    columns = {**DEFAULT_COLUMNS, **(spec.get("columns") or {})}

    def rows() -> Iterator[SourceItem]:
        good = ((row, obj) for row, obj in _read_lines(path))
        for row, obj in good:
            if isinstance(obj, _BadLine):
                yield Quarantined(path, row, None, obj.reason, str(obj))
                continue
            yield from iter_mapped(iter([(row, obj)]), location=path, name=name,
                                   license=spec.get("license"), columns=columns)

    return rows()
