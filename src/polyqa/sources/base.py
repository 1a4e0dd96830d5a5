"""What every source yields, and the registry that turns a config entry into records.

A source is a function ``open(spec) -> Iterator[RawRecord | Quarantined]`` registered
under a *kind* (``squad_json``, ``hf_dataset``, ``jsonl``, ``parallel``). Named
*presets* (``squad``, ``nq_open``, ...) are plain config in
``polyqa/data/source_presets.yaml``: a new dataset is a YAML entry, not code.
Sources yield lazily so memory does not grow with the size of the source.

A quarantined row's ``reason`` is ``"<code>: <detail>"``: the code (one of
:data:`REASONS`) is stable and is what the manifest counts; the detail names
this row's problem (``"question_type: question is int, not a string"``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


class SourceError(ValueError):
    """Input that cannot be read at all: names the file, the row and the field."""

    def __init__(self, source: str, message: str, *, row: int | None = None, field: str | None = None):
        self.source, self.row, self.field = source, row, field
        where = source + (f", row {row}" if row is not None else "") + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")


# Quarantine reason codes: a field's problem is <field>_missing (absent or null), <field>_type
# (present but of the wrong type) or <field>_empty, so a type error is never reported as missing.
REASONS = {
    "question_missing": "no question", "question_type": "question is not a string",
    "question_empty": "empty question",
    "passage_missing": "no passage", "passage_type": "passage is not a string", "passage_empty": "empty passage",
    "answers_missing": "no answers field", "answers_type": "answers of the wrong type",
    "answers_empty": "no non-empty answer", "answer_start_type": "answer start is not an integer",
    "answer_not_found": "answer not found in the passage",
    "id_type": "id is not a string or integer", "id_missing": "no id (a parallel set aligns languages by id)",
    "title_type": "title is not a string",
    "duplicate_id": "same id as an earlier row", "duplicate_question": "same question on the same passage",
    "row_type": "row is not an object", "paragraph_type": "paragraph is not an object",
    "qas_type": "qas is not a list", "qa_type": "question entry is not an object",
    "invalid_json": "line is not valid JSON",
    "language_missing": "no text in a language and no translation model",
    "id_not_in_language": "id missing in another language's file",
    "id_not_in_english": "id missing in the English file",
}


def reason(code: str, detail: str) -> str:
    """A quarantine reason: a stable code from :data:`REASONS`, then this row's detail."""
    return f"{code}: {detail}"


def reason_code(text: str) -> str:
    """The code of a quarantine reason (what the manifest counts rows by)."""
    return text.partition(":")[0].strip()


def type_name(value: Any) -> str:
    """A value's type as a JSON reader would name it: str, int, float, bool, list, object or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


class FieldTypeError(TypeError):
    """A source field of the wrong type; sources quarantine the row with :attr:`reason`."""

    def __init__(self, field: str, code: str, detail: str):
        super().__init__(detail)
        self.field, self.code, self.detail = field, code, detail

    @property
    def reason(self) -> str:
        return reason(self.code, self.detail)


def source_id(value: Any) -> str | None:
    """A record's original id as text (integers too); None when absent; FieldTypeError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FieldTypeError("id", "id_type", f"id is {type_name(value)}, not a string or integer")
    return str(value)


@dataclass
class Answer:
    text: str
    start: int | None  # None when the source gives no offset; normalisation locates it


@dataclass
class RawRecord:
    """One English QA pair as a source read it, before validation and normalisation."""

    source: str  # source dataset name (goes into the corpus ``source`` column)
    row: int  # index within the source, for error messages and quarantine
    original_id: str | None
    question: Any
    passage: Any
    answers: list[Answer] | None  # None when the source row has no answers field
    title: Any = None  # checked by normalisation: a string or None
    license: str | None = None
    sentences: list[str] | None = None  # given by LAReQA-style files
    sentence_starts: list[int] | None = None
    raw: Mapping[str, Any] | None = None  # for the quarantine
    location: str | None = None  # file or dataset the row came from (error messages)
    # For parallel imports: {lang: RawRecord} of the same QA pair in other languages.
    translations: dict[str, RawRecord] = field(default_factory=dict)


@dataclass
class Quarantined:
    """An unusable row, kept with its reason (QUARANTINE_SCHEMA)."""

    source: str
    row: int | None
    field: str | None
    reason: str
    record: Any = None

    def as_row(self) -> dict[str, Any]:
        record = self.record
        if record is not None and not isinstance(record, str):
            record = json.dumps(record, ensure_ascii=False, default=str)
        return {"source": self.source, "row": self.row, "field": self.field,
                "reason": self.reason, "record": record}


SourceItem = RawRecord | Quarantined
SourceOpener = Callable[[Mapping[str, Any]], Iterator[SourceItem]]

_KINDS: dict[str, SourceOpener] = {}


def register_source(kind: str) -> Callable[[SourceOpener], SourceOpener]:
    """Decorator: make ``kind`` usable as ``{"kind": kind, ...}`` in a config."""

    def deco(fn: SourceOpener) -> SourceOpener:
        _KINDS[kind] = fn
        return fn

    return deco


def source_kinds() -> list[str]:
    _load_builtin_kinds()
    return sorted(_KINDS)


@lru_cache(maxsize=1)
def presets() -> dict[str, dict[str, Any]]:
    """Named source configurations shipped with polyqa (``source_presets.yaml``)."""
    text = resources.files("polyqa.data").joinpath("source_presets.yaml").read_text("utf-8")
    return yaml.safe_load(text) or {}


def resolve_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """A config entry with its preset expanded: ``"squad"`` or ``{"preset": "squad", "split": ...}``."""
    if isinstance(spec, str):
        spec = {"preset": spec}
    spec = dict(spec)
    name = spec.pop("preset", None)
    if name is not None:
        if name not in presets():
            raise SourceError("config", f"unknown source preset {name!r}; known: {sorted(presets())}",
                              field="preset")
        base = dict(presets()[name])
        base.setdefault("name", name)
        base.update(spec)
        spec = base
    if "kind" not in spec:
        raise SourceError("config", f"source entry {spec!r} has no 'kind' or 'preset'", field="kind")
    path = spec.get("path")
    if isinstance(path, str) and "://" not in path:  # local: ~, $POLYQA_DATA_DIR, $POLYQA_HOME
        from polyqa.paths import expand

        spec["path"] = expand(path)
    return spec


def _load_builtin_kinds() -> None:
    # Imported for their @register_source side effect.
    from polyqa.sources import hf_dataset, jsonl, parallel_import, squad_json  # noqa: F401


def open_source(spec: str | Mapping[str, Any]) -> Iterator[SourceItem]:
    """Iterate one configured source lazily."""
    spec = resolve_spec(spec)
    _load_builtin_kinds()
    kind = spec["kind"]
    if kind not in _KINDS:
        raise SourceError("config", f"unknown source kind {kind!r}; known: {sorted(_KINDS)}", field="kind")
    return _KINDS[kind](spec)


def source_name(spec: str | Mapping[str, Any]) -> str:
    spec = resolve_spec(spec)
    return str(spec.get("name") or spec.get("path") or spec.get("dataset") or spec["kind"])


def get_path(obj: Any, dotted: str) -> Any:
    """``get_path(row, "answers.text")``: follow a dotted column path; KeyError if absent."""
    for part in dotted.split("."):
        if isinstance(obj, Mapping):
            obj = obj[part]
        elif isinstance(obj, (list, tuple)) and part.isdigit():
            obj = obj[int(part)]
        else:
            raise KeyError(part)
    return obj


def parse_answers(value: Any, starts: Any = None) -> list[Answer]:
    """Answers in any of the usual layouts, as a list of :class:`Answer`.

    Accepts SQuAD's ``[{"text", "answer_start"}]``, the Hugging Face ``squad``
    column ``{"text": [...], "answer_start": [...]}``, ``[{"text", "start"}]``,
    a list of strings (``nq_open``) or one string; ``starts`` gives offsets
    separately when the mapping names an ``answer_starts`` column.
    Raises :class:`FieldTypeError` (a TypeError) for anything else; the caller quarantines the row.
    """
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        texts = value.get("text", value.get("texts"))
        offsets = value.get("answer_start", value.get("start"))
        if isinstance(texts, str):
            return [Answer(texts, _as_offset(offsets))]
        if not isinstance(texts, (list, tuple)):
            raise FieldTypeError("answers", "answers_type",
                                 f"answers object has 'text' of type {type_name(texts)}, not a list or a string")
        offsets = list(offsets) if isinstance(offsets, (list, tuple)) else [None] * len(texts)
        return [Answer(_answer_text(t, i), _as_offset(s))
                for i, (t, s) in enumerate(zip(texts, offsets + [None] * len(texts)))]
    if not isinstance(value, (list, tuple)):
        raise FieldTypeError("answers", "answers_type",
                             f"answers is {type_name(value)}, not a list, an object or a string")
    starts = list(starts) if isinstance(starts, (list, tuple)) else [None] * len(value)
    starts += [None] * (len(value) - len(starts))
    out = []
    for i, (item, start) in enumerate(zip(value, starts)):
        if isinstance(item, str):
            out.append(Answer(item, _as_offset(start)))
        elif isinstance(item, Mapping) and "text" in item:
            offset = item.get("answer_start", item.get("start", start))
            out.append(Answer(_answer_text(item["text"], i), _as_offset(offset)))
        else:
            raise FieldTypeError("answers", "answers_type",
                                 f"answer {i} is {type_name(item)}, not a string or an object with a 'text'")
    return out


def _answer_text(value: Any, index: int) -> str:
    if not isinstance(value, str):
        raise FieldTypeError("answers", "answers_type", f"answer {index} text is {type_name(value)}, not a string")
    return value


def _as_offset(value: Any) -> int | None:
    if value is None or value == "" or value == -1:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (
        isinstance(value, str) and not value.lstrip("-").isdigit()
    ):
        raise FieldTypeError("answers", "answer_start_type",
                             f"answer start {value!r} is {type_name(value)}, not an integer")
    return int(value)
