"""Ingest: every configured source, normalised, into staged English records and the quarantine.

The records go to ``_work/records.arrow``, one record batch per shard
(``shard_rows`` rows each), so memory stays bounded by one shard; unusable
rows go to ``quarantine.arrow`` with their reason. A finished ingest of the
same configuration is reused (``_work/ingest.json``) while the staged file
matches its checksum, so a killed build resumes without reading the sources again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from polyqa import paths, storage
from polyqa.corpus.config import BuildConfig
from polyqa.storage import atomic_write_bytes
from polyqa.corpus.writer import QUARANTINE_FILE, QuarantineWriter, open_arrow, sha256_file
from polyqa.storage import AnyPath, RemotePath
from polyqa.languages import ENGLISH

WORK_DIR = "_work"
STAGE_FILE = "records.arrow"
INGEST_FILE = "ingest.json"

STAGE_SCHEMA = pa.schema(
    [
        pa.field("qa_id", pa.string(), nullable=False),
        pa.field("passage_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("license", pa.string()),
        pa.field("title", pa.string()),
        pa.field("question", pa.string(), nullable=False),
        pa.field("passage", pa.string(), nullable=False),
        pa.field("sentences", pa.list_(pa.string()), nullable=False),
        pa.field("sentence_starts", pa.list_(pa.int32()), nullable=False),
        pa.field("answer_text", pa.string(), nullable=False),
        pa.field("answer_start", pa.int32(), nullable=False),
        pa.field("translations", pa.string()),  # JSON {lang: LangText} of imported parallel versions
    ]
)


@dataclass(frozen=True)
class IngestSummary:
    """What ingest staged; the manifest copies it (records, sources, filters, quarantine)."""

    config_fingerprint: str
    records: int
    n_shards: int
    shard_rows: int
    sources: list[dict[str, Any]]  # per source: name, kind, license, location and its counts
    records_sha256: str  # identifies the staged records: shards built from other records are not reused
    filters: dict[str, Any]  # normaliser counts and the leakage guard
    quarantine: dict[str, Any]  # {"rows": n, "reasons": {reason code: n}, "sha256": of quarantine.arrow}
    seconds: float
    segment_seconds: float = 0.0  # of ``seconds``, splitting passages into sentences

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def work_dir(corpus_dir: str | Path | RemotePath) -> AnyPath:
    return storage.as_path(corpus_dir) / WORK_DIR


@lru_cache(maxsize=4096)  # passages repeat across their questions; bounded, so memory stays flat
def split_sentences(passage: str, lang: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    from polyqa.segment import split_sentences as split

    sentences = split(passage, lang)
    return tuple(s.text for s in sentences), tuple(s.start for s in sentences)


def _to_stage_row(record: Any) -> tuple[dict[str, Any], float]:
    """The staged record, and the seconds spent segmenting its passages."""
    started = time.perf_counter()
    english = record.english
    sentences, starts = english.sentences, english.sentence_starts
    if sentences is None:
        sentences, starts = map(list, split_sentences(english.passage, ENGLISH))
    translations = None
    if record.translations:
        out = {}
        for lang, text in record.translations.items():
            t_sentences, t_starts = text.sentences, text.sentence_starts
            if t_sentences is None:
                t_sentences, t_starts = map(list, split_sentences(text.passage, lang))
            out[lang] = {**asdict(text), "sentences": t_sentences, "sentence_starts": t_starts}
        translations = json.dumps(out, ensure_ascii=False)
    segmenting = time.perf_counter() - started
    return {
        "qa_id": record.qa_id, "passage_id": record.passage_id, "source": record.source,
        "license": record.license, "title": english.title, "question": english.question,
        "passage": english.passage, "sentences": sentences, "sentence_starts": starts,
        "answer_text": english.answer_text, "answer_start": english.answer_start,
        "translations": translations,
    }, segmenting


def _stage_records(config: BuildConfig, corpus_dir: AnyPath, stage_tmp: Path, normalizer: Any,
                   log: Callable[[str], None]) -> tuple[int, int, list[dict[str, Any]], int, dict[str, int], float]:
    """Normalise every source into the staging file (one batch per shard) and the quarantine."""
    from polyqa.sources.base import Quarantined, open_source, resolve_spec, source_name

    sources: list[dict[str, Any]] = []
    buffer: list[dict[str, Any]] = []
    n_shards = records = 0
    segmenting = 0.0
    with QuarantineWriter(corpus_dir) as quarantine, pa.OSFile(str(stage_tmp), "wb") as sink, \
            ipc.new_file(sink, STAGE_SCHEMA) as stage:
        for spec in config.sources:
            resolved = resolve_spec(spec)
            before = normalizer.stats()
            selected = normalizer(open_source(resolved), resolved.get("titles"), resolved.get("exclude_titles"))
            for out in selected:
                if isinstance(out, Quarantined):
                    quarantine.add(out.as_row())
                    continue
                row, seconds = _to_stage_row(out)
                buffer.append(row)
                segmenting += seconds
                records += 1
                if len(buffer) >= config.shard_rows:  # only one shard of records is ever held
                    stage.write_table(pa.Table.from_pylist(buffer, schema=STAGE_SCHEMA))
                    buffer, n_shards = [], n_shards + 1
                    log(f"ingest: {records} records staged")
            after = normalizer.stats()
            location = resolved.get("path") or resolved.get("dataset") or resolved.get("load_from_disk")
            sources.append({
                "name": source_name(spec), "kind": resolved["kind"], "license": resolved.get("license"),
                "location": str(location),
                **{k: after[k] - before[k] for k in ("read", "kept", "quarantined", "duplicates", "leakage_excluded",
                                                              "title_excluded")},
            })
        if buffer:
            stage.write_table(pa.Table.from_pylist(buffer, schema=STAGE_SCHEMA))
            n_shards += 1
        quarantine_rows, reasons = quarantine.rows, dict(quarantine.reasons)
    return records, n_shards, sources, quarantine_rows, reasons, segmenting


def ingest(config: BuildConfig, corpus_dir: str | Path | RemotePath, log: Callable[[str], None] = lambda _: None
           ) -> IngestSummary:
    """Stream the sources into staged shards of English records (or reuse a finished ingest of this config)."""
    from polyqa.corpus.normalize import LeakageGuard, Normalizer

    corpus_dir = storage.as_path(corpus_dir)
    work = work_dir(corpus_dir)
    info_path = work / INGEST_FILE
    if info_path.exists() and (work / STAGE_FILE).exists():
        try:
            staged = IngestSummary(**json.loads(info_path.read_text("utf-8")))
        except (ValueError, TypeError):  # unreadable or of another polyqa version: ingest again
            staged = None
        if staged is not None and staged.config_fingerprint == config.fingerprint():
            intact = sha256_file(work / STAGE_FILE) == staged.records_sha256 and \
                quarantine_intact(corpus_dir, staged.quarantine)
            if intact:
                log(f"ingest: reusing {staged.records} staged records ({staged.n_shards} shards)")
                return staged
            log(f"ingest: the staged records or {QUARANTINE_FILE} fail their checksum; reading the sources again")
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    guard = LeakageGuard([paths.expand(p) for p in config.exclude_passages_from]) \
        if config.exclude_passages_from else None
    # With no MT model every record must bring all languages itself (parallel imports).
    normalizer = Normalizer(guard, required_languages=config.languages if config.model is None else (),
                            dedup_questions=config.dedup_questions)
    with storage.atomic_file(work / STAGE_FILE) as stage_tmp:
        records, n_shards, sources, quarantine_rows, reasons, segmenting = _stage_records(
            config, corpus_dir, stage_tmp, normalizer, log)
        records_sha256 = sha256_file(stage_tmp)
    if records == 0:
        raise ValueError(f"no usable records in the configured sources ({quarantine_rows} quarantined; "
                         f"see {corpus_dir / 'quarantine.arrow'})")
    stats = normalizer.stats()
    summary = IngestSummary(
        config_fingerprint=config.fingerprint(), records=records, n_shards=n_shards,
        shard_rows=config.shard_rows, sources=sources, records_sha256=records_sha256,
        filters={**{k: v for k, v in stats.items() if k != "kept_by_source"},
                 "leakage_guard_files": list(config.exclude_passages_from),
                 "leakage_guard_passages": len(guard.keys) if guard else 0},
        quarantine={"rows": quarantine_rows, "reasons": reasons,
                    "sha256": sha256_file(corpus_dir / QUARANTINE_FILE)},
        seconds=round(time.perf_counter() - started, 3), segment_seconds=round(segmenting, 3),
    )
    atomic_write_bytes(info_path, json.dumps(summary.as_dict(), indent=2).encode())
    log(f"ingest: {records} records in {n_shards} shards, {quarantine_rows} quarantined, "
        f"{stats['leakage_excluded']} excluded by the leakage guard")
    return summary


def quarantine_intact(corpus_dir: str | Path | RemotePath, quarantine: dict[str, Any]) -> bool:
    """True when quarantine.arrow is the file ingest wrote (by its checksum; True when none was recorded)."""
    expected = (quarantine or {}).get("sha256")
    path = storage.as_path(corpus_dir) / QUARANTINE_FILE
    return expected is None or (path.is_file() and sha256_file(path) == expected)


def read_stage_shard(corpus_dir: str | Path | RemotePath, index: int) -> list[dict[str, Any]]:
    """The staged English records of shard ``index``."""
    path = work_dir(corpus_dir) / STAGE_FILE
    with open_arrow(path) as source:
        reader = ipc.open_file(source)
        if not 0 <= index < reader.num_record_batches:
            raise IndexError(f"{path}: no staged shard {index} (have {reader.num_record_batches})")
        return reader.get_batch(index).to_pylist()
