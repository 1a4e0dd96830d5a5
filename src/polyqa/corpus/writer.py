"""Writing corpus shards and the quarantine: temporary name, fsync, atomic rename.

A shard is ``<corpus>/lang=<code>/part-KKKKK-of-NNNNN.arrow`` (Arrow IPC file,
zstd) or ``.parquet``. A file only appears under its final name once it is
complete, so a killed run leaves no half-written shard behind.

On object storage (a :class:`~polyqa.storage.RemotePath`) there is no rename:
the file is written to a local temporary file and uploaded in one call, and an
object becomes visible only when its upload completes, so the same holds.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from polyqa import storage
from polyqa.corpus.schema import CORPUS_SCHEMA, QUARANTINE_SCHEMA
from polyqa.storage import AnyPath, RemotePath

FORMATS = {"arrow": "arrow", "parquet": "parquet"}
QUARANTINE_FILE = "quarantine.arrow"
BATCH_ROWS = 1000  # record batch size inside a shard (streaming readers yield one at a time)


def shard_relpath(lang: str, index: int, total: int, fmt: str = "arrow") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown corpus format {fmt!r}; use one of {sorted(FORMATS)}")
    return f"lang={lang}/part-{index:05d}-of-{total:05d}.{FORMATS[fmt]}"


def sha256_file(path: str | Path | RemotePath) -> str:
    digest = hashlib.sha256()
    with (path.open("rb", block_size=1 << 22) if isinstance(path, RemotePath) else open(path, "rb")) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ids_digest(qa_ids: Iterable[str]) -> str:
    """Digest of a shard's qa_id sequence: equal across languages iff the shards are aligned."""
    digest = hashlib.sha256()
    for qa_id in qa_ids:
        digest.update(qa_id.encode("utf-8") + b"\n")
    return digest.hexdigest()


@dataclass
class WrittenShard:
    lang: str
    index: int
    path: str  # relative to the corpus folder
    rows: int
    bytes: int
    sha256: str
    qa_ids_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Temporary files of polyqa's writers (storage.temporary_name, ingest's staging file, the lock's holder file),
# by the names they are made for: a killed build leaves them behind, the next build removes them.
TEMPORARY_RE = re.compile(
    r"^\.(manifest\.json|quarantine\.arrow|README\.md|\.polyqa-corpus\.json|\.polyqa\.lock\.json|"
    r"ingest\.json|records\.arrow|part-\d{5}-of-\d{5}\.(arrow|parquet))\.tmp-\d+(-[0-9a-f]{8})?$")


def temporary_files(corpus_dir: str | Path | RemotePath) -> list[AnyPath]:
    """polyqa's temporary files in a corpus folder, its lang= partitions and its staging area (_work)."""
    root = storage.as_path(corpus_dir)
    folders = [root, root / "_work", root / "_work" / "recorded", *(p for p in root.glob("lang=*") if p.is_dir())]
    return sorted(p for folder in folders if folder.is_dir() for p in folder.iterdir()
                  if TEMPORARY_RE.match(p.name) and p.is_file())


def to_corpus_table(rows: list[Mapping[str, Any]] | pa.Table) -> pa.Table:
    """Rows as a table of exactly CORPUS_SCHEMA (raises naming the column on a mismatch)."""
    try:
        if isinstance(rows, pa.Table):
            return rows.select(CORPUS_SCHEMA.names).cast(CORPUS_SCHEMA)
        return pa.Table.from_pylist(list(rows), schema=CORPUS_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, ValueError) as exc:
        raise ValueError(f"rows do not fit the corpus schema: {exc}") from exc


def write_shard(corpus_dir: str | Path, table: pa.Table, *, lang: str, index: int, total: int,
                fmt: str = "arrow", compression: str = "zstd") -> WrittenShard:
    """Write one language's shard atomically and return what the manifest records about it."""
    table = to_corpus_table(table)
    nulls = [name for name in CORPUS_SCHEMA.names
             if not CORPUS_SCHEMA.field(name).nullable and table.column(name).null_count]
    if nulls:
        raise ValueError(f"shard {index} of {lang}: null values in non-nullable columns {nulls}")
    rel = shard_relpath(lang, index, total, fmt)
    path = storage.as_path(corpus_dir) / rel
    remote = isinstance(path, RemotePath)
    path.parent.mkdir(parents=True, exist_ok=True)
    with storage.atomic_file(path) as tmp:
        if fmt == "parquet":
            pq.write_table(table, tmp, compression=compression, row_group_size=BATCH_ROWS)
        else:
            options = ipc.IpcWriteOptions(compression=None if compression == "none" else compression)
            with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, CORPUS_SCHEMA, options=options) as writer:
                writer.write_table(table, max_chunksize=BATCH_ROWS)
        if remote:  # size and checksum of what is uploaded, without reading it back
            size, sha256 = tmp.stat().st_size, sha256_file(tmp)
    if not remote:
        size, sha256 = path.stat().st_size, sha256_file(path)
    return WrittenShard(lang, index, rel, table.num_rows, size, sha256, ids_digest(table.column("qa_id").to_pylist()))


class QuarantineWriter:
    """Streams quarantined rows into ``quarantine.arrow`` (renamed into place on close)."""

    def __init__(self, corpus_dir: str | Path | RemotePath, batch_rows: int = 1000):
        self.path = storage.as_path(corpus_dir) / QUARANTINE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = storage.spool_file(self.path) if isinstance(self.path, RemotePath) else storage.temporary_name(self.path)
        self._sink = pa.OSFile(str(self._tmp), "wb")
        self._writer = ipc.new_file(self._sink, QUARANTINE_SCHEMA,
                                    options=ipc.IpcWriteOptions(compression="zstd"))
        self._buffer: list[dict[str, Any]] = []
        self._batch_rows = batch_rows
        self.rows = 0
        self.reasons: dict[str, int] = {}

    def add(self, row: Mapping[str, Any]) -> None:
        self._buffer.append(dict(row))
        self.rows += 1
        reason = str(row["reason"]).split(":")[0][:80]
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if len(self._buffer) >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=QUARANTINE_SCHEMA))
            self._buffer = []

    def close(self) -> None:
        self._flush()
        self._writer.close()
        self._sink.close()
        if isinstance(self.path, RemotePath):
            try:
                storage.put_file(self._tmp, self.path)
            finally:
                self._tmp.unlink(missing_ok=True)
        else:
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._writer.close()
        self._sink.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> QuarantineWriter:
        return self

    def __exit__(self, exc_type, *_: object) -> None:
        self.abort() if exc_type else self.close()


def read_quarantine(corpus_dir: str | Path | RemotePath) -> pa.Table:
    path = storage.as_path(corpus_dir) / QUARANTINE_FILE
    if not path.exists():
        return QUARANTINE_SCHEMA.empty_table()
    with open_arrow(path) as source:
        return ipc.open_file(source).read_all()


def open_arrow(path: AnyPath):
    """A source ``pyarrow.ipc.open_file`` reads: memory-mapped locally, a file object on a store."""
    return path.open("rb") if isinstance(path, RemotePath) else pa.memory_map(str(path))
