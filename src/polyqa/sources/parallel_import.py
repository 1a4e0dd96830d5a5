"""Import an existing parallel QA set (SQuAD/LAReQA JSON, one file per language).

``{kind: parallel, path: /data/xquad-r, languages?: [de, ar, ...], english?: en}``
reads ``<path>/<code>.json`` for every language (found by
:func:`polyqa.sources.lareqa.language_files`, codes in any spelling); the same
qa ids must appear in all files. Each English record carries its other-language versions in
``translations`` and goes into the corpus as is (no machine translation).
LAReQA paragraphs give ``sentences``/``sentence_breaks``; they are used as the
sentence list. A QA pair missing from a language is quarantined (all its
languages), since every shard must hold the same ids in every language.

The per-language files are held in memory while importing (they are small
evaluation sets); the English side is still yielded record by record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from polyqa import languages as L
from polyqa.languages import ENGLISH
from polyqa.sources.base import Quarantined, RawRecord, SourceError, SourceItem, reason, register_source
from polyqa.sources.lareqa import language_files
from polyqa.sources.squad_json import iter_squad_records

__all__ = ["language_files", "open_parallel"]


@register_source("parallel")
def open_parallel(spec: Mapping[str, Any]) -> Iterator[SourceItem]:
    if "path" not in spec:
        raise SourceError("config", "parallel source needs a 'path' (folder of <lang>.json)", field="path")
    folder = Path(str(spec["path"]))
    name = spec.get("name") or folder.name
    license = spec.get("license")
    english = L.normalize(str(spec["english"])) if spec.get("english") else ENGLISH
    wanted = spec.get("languages")
    files = language_files(folder, [str(x) for x in wanted] if wanted else None)
    if english not in files:
        files[english] = language_files(folder, [english])[english]

    def records() -> Iterator[SourceItem]:
        others: dict[str, dict[str, RawRecord]] = {}
        for code, path in files.items():
            if code == english:
                continue
            by_id: dict[str, RawRecord] = {}
            for item in iter_squad_records(path, name=name, license=license):
                if isinstance(item, Quarantined):
                    yield item
                elif item.original_id is None:
                    yield _no_id(path, item)
                else:
                    by_id[item.original_id] = item
            others[code] = by_id
        for item in iter_squad_records(files[english], name=name, license=license):
            if isinstance(item, Quarantined):
                yield item
                continue
            if item.original_id is None:
                yield _no_id(files[english], item)
                continue
            missing = [code for code, by_id in others.items() if item.original_id not in by_id]
            if missing:
                yield Quarantined(str(files[english]), item.row, "id",
                                  reason("id_not_in_language",
                                         f"qa id {item.original_id!r} missing in {', '.join(missing)}"), item.raw)
                continue
            item.translations = {code: by_id.pop(item.original_id) for code, by_id in others.items()}
            yield item
        for code, by_id in others.items():
            for qa_id, rec in by_id.items():
                yield Quarantined(str(files[code]), rec.row, "id",
                                  reason("id_not_in_english", f"qa id {qa_id!r} not in the English file"), rec.raw)

    return records()


def _no_id(path: Path, item: RawRecord) -> Quarantined:
    return Quarantined(str(path), item.row, "id",
                       reason("id_missing", "question without an id: a parallel set aligns its languages by id"),
                       item.raw)
