"""The translation store beside a corpus: what its build translated, so that a rebuild on any
machine translates only what is new.

The translation cache is one SQLite file per machine; a scheduled rebuild on fresh workers
would start with an empty one. So each unit also writes the translations it used into the
corpus, ``translations/lang=<L>/part-<k>-of-<n>.arrow`` (columns ``source``, ``translation``;
the cache key prefix, i.e. model, decoding settings and language pair, in the schema
metadata), beside its shard, on a local disk or an object store alike.

A build that opens an output holding a store first copies it into its staging area
(``_work/seed/lang=<L>.arrow``), so the units may replace the parts while others still read
them. Each process then loads a language's seed into its cache before its first unit of
that language (:func:`seed_cache`), and the model sees only segments no earlier build of
the corpus translated. The store is polyqa's: ``--overwrite`` deletes it, ``--refresh``
keeps it for the rebuild, and parts the finished manifest does not list are removed.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from polyqa import storage
from polyqa.corpus.ingest import WORK_DIR
from polyqa.corpus.writer import open_arrow
from polyqa.languages import ENGLISH
from polyqa.storage import AnyPath

STORE_DIR = "translations"
SEED_DIR = "seed"
PART_RE = re.compile(r"^part-(\d{5})-of-(\d{5})\.arrow$")
KEY_PREFIX = b"polyqa.key_prefix"

_SEEDED: set[tuple[str, str, str, str]] = set()  # (output, lang, key prefix, cache) loaded by this process
_SEEDING = threading.Lock()


def part_relpath(lang: str, index: int, total: int) -> str:
    return f"{STORE_DIR}/lang={lang}/part-{index:05d}-of-{total:05d}.arrow"


def write_part(output: AnyPath, lang: str, index: int, total: int, key_prefix: str,
               translations: Mapping[str, str]) -> dict[str, Any]:
    """Write a unit's translations (English segment -> ``lang``) atomically; what the manifest records."""
    schema = pa.schema([("source", pa.string()), ("translation", pa.string())], metadata={KEY_PREFIX: key_prefix})
    table = pa.table({"source": list(translations), "translation": list(translations.values())}, schema=schema)
    sink = io.BytesIO()
    with ipc.new_file(sink, schema, options=ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    data = sink.getvalue()
    rel = part_relpath(lang, index, total)
    path = storage.as_path(output) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.atomic_write_bytes(path, data)
    return {"path": rel, "rows": table.num_rows, "sha256": hashlib.sha256(data).hexdigest()}


def store_parts(output: AnyPath) -> list[AnyPath]:
    """Every file of the store (named like a part, in a lang= folder of translations/)."""
    root = storage.as_path(output) / STORE_DIR
    if not root.is_dir():
        return []
    return sorted(p for d in root.glob("lang=*") if d.is_dir() for p in d.iterdir()
                  if PART_RE.match(p.name) and p.is_file())


def _read(path: AnyPath) -> pa.Table:
    with open_arrow(path) as source:
        return ipc.open_file(source).read_all()


def prepare_seed(output: AnyPath, log: Callable[[str], None]) -> int:
    """Copy the store into the staging area, one file per language; returns the pairs copied."""
    output = storage.as_path(output)
    by_lang: dict[str, list[pa.Table]] = {}
    for path in store_parts(output):
        table = _read(path)
        prefix = (table.schema.metadata or {}).get(KEY_PREFIX, b"").decode()
        lang = path.parent.name.removeprefix("lang=")
        by_lang.setdefault(lang, []).append(pa.table({
            "key_prefix": pa.array([prefix] * table.num_rows, pa.string()),
            "source": table.column("source"), "translation": table.column("translation")}))
    pairs = 0
    for lang, tables in by_lang.items():
        seed = pa.concat_tables(tables)
        sink = io.BytesIO()
        with ipc.new_file(sink, seed.schema, options=ipc.IpcWriteOptions(compression="zstd")) as writer:
            writer.write_table(seed)
        path = output / WORK_DIR / SEED_DIR / f"lang={lang}.arrow"
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.atomic_write_bytes(path, sink.getvalue())
        pairs += seed.num_rows
    if pairs:
        log(f"{output}: {pairs} translations of earlier builds of this corpus are reused "
            f"({', '.join(sorted(by_lang))})")
    return pairs


def seed_cache(engine: Any, output: AnyPath, lang: str) -> int:
    """Load the staged translations of ``lang`` made with this engine's model and settings into
    its cache, once per process; returns the pairs loaded."""
    if engine.cache is None:
        return 0
    prefix = engine.key_prefix(ENGLISH, lang)
    key = (str(output), lang, prefix, str(engine.cache.path))
    with _SEEDING:
        if key in _SEEDED:
            return 0
        path = storage.as_path(output) / WORK_DIR / SEED_DIR / f"lang={lang}.arrow"
        if not path.is_file():  # no earlier build left translations (checked again by the next unit)
            return 0
        seed = _read(path)
        pairs = [(source, translation) for prefix_of, source, translation in zip(
            seed.column("key_prefix").to_pylist(), seed.column("source").to_pylist(),
            seed.column("translation").to_pylist()) if prefix_of == prefix]
        if pairs:
            engine.cache.put_many(prefix, pairs)
        _SEEDED.add(key)
        return len(pairs)


def unlisted_parts(output: AnyPath, listed: set[str]) -> list[AnyPath]:
    """Store parts no manifest entry lists (an older shard count, a removed language)."""
    root = storage.as_path(output)
    keep = {(root / rel).resolve() for rel in listed}
    return [p for p in store_parts(output) if p.resolve() not in keep]
