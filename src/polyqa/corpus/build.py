"""The build-corpus pipeline as plain functions (the CLI and the Prefect flow both call these).

Stages, each resumable:

1. :func:`ingest` streams every configured source through normalisation into
   ``_work/records.arrow`` (one record batch per shard, ``shard_rows`` rows
   each) and ``quarantine.arrow``. Memory is bounded by one shard.
2. :func:`build_language_shard` turns English shard ``k`` into the rows of one
   language (translating the shard's unique segments once with
   ``translate_many``), scores and projects them, and writes the shard file.
3. :func:`record_shard` adds a written shard to ``manifest.json`` (atomically),
   so a killed run skips it next time if its checksum still verifies.
4. :func:`finalize` totals the statistics and writes the data card.

:func:`build_corpus` runs all of it sequentially with an optional progress bar.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import yaml

from polyqa import languages as L
from polyqa.corpus.manifest import Manifest, code_version
from polyqa.corpus.schema import PROJECTION_SOURCE, SCHEMA_VERSION
from polyqa.corpus.writer import QuarantineWriter, atomic_write_bytes, write_shard
from polyqa.quality import QualityThresholds, project_answer, score_text

ENGLISH = "eng_Latn"
WORK_DIR = "_work"
STAGE_FILE = "records.arrow"
INGEST_FILE = "ingest.json"

# Licenses of known MT model families (the corpus inherits them).
MODEL_LICENSES = {"facebook/nllb-200": "CC-BY-NC-4.0", "tiny": "Apache-2.0 (random weights built by polyqa)"}

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


class CorpusConflictError(RuntimeError):
    """The output folder holds a corpus built from a different configuration."""


# --------------------------------------------------------------------------- config


@dataclass
class BuildConfig:
    name: str = "polyqa-default"
    sources: list[Any] = field(default_factory=lambda: ["polyqa_sample"])
    languages: list[str] = field(default_factory=lambda: ["deu_Latn", "fra_Latn", "spa_Latn"])
    shard_rows: int = 1000
    format: str = "arrow"
    compression: str = "zstd"
    model: str | None = "tiny"  # "tiny", a hub name, a local model folder, or None (imports only)
    revision: str | None = None
    quantization: str = "int8"
    models_dir: str = "~/.cache/polyqa/models"
    tiny_model_dir: str | None = None  # where the tiny model is built (default models_dir/tiny-nllb)
    cache: str | None = "~/.cache/polyqa/translations.sqlite"
    decoding: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)  # device, inter_threads, intra_threads
    quality: dict[str, Any] = field(default_factory=dict)
    exclude_passages_from: list[str] = field(default_factory=list)
    dedup_questions: bool = True  # same question on the same passage under another id -> quarantine
    card_dir: str | None = "data_cards"

    # Keys that change where things are cached or shown, not what the corpus holds.
    _NOT_CONTENT = ("models_dir", "tiny_model_dir", "cache", "engine", "card_dir")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> BuildConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")
        config = cls(**dict(values))
        config.languages = [lang for lang in L.normalize_many(list(config.languages)) if lang != ENGLISH]
        if config.format not in ("arrow", "parquet"):
            raise ValueError(f"config 'format' must be arrow or parquet, not {config.format!r}")
        if int(config.shard_rows) < 1:
            raise ValueError("config 'shard_rows' must be at least 1")
        QualityThresholds.from_config(config.quality)  # fail early on unknown thresholds
        if not config.sources:
            raise ValueError("config has no sources")
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> BuildConfig:
        try:
            values = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(values, Mapping):
            raise ValueError(f"{path}: a build config must be a mapping")
        try:
            return cls.from_dict(values)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def default(cls) -> BuildConfig:
        text = resources.files("polyqa.data").joinpath("default_config.yaml").read_text("utf-8")
        return cls.from_dict(yaml.safe_load(text))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        content = {k: v for k, v in self.as_dict().items() if k not in self._NOT_CONTENT}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def all_languages(self) -> list[str]:
        return [ENGLISH, *self.languages]

    def thresholds(self) -> QualityThresholds:
        return QualityThresholds.from_config(self.quality)


def load_config(config: BuildConfig | Mapping[str, Any] | str | Path | None) -> BuildConfig:
    if config is None:
        return BuildConfig.default()
    if isinstance(config, BuildConfig):
        return config
    if isinstance(config, Mapping):
        return BuildConfig.from_dict(config)
    return BuildConfig.from_yaml(config)


# --------------------------------------------------------------------------- engine

_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()
_TRANSLATE_LOCKS: dict[int, threading.Lock] = {}


def model_license(model: str | None) -> str | None:
    if model is None:
        return None
    for prefix, license in MODEL_LICENSES.items():
        if str(model).startswith(prefix):
            return license
    return "see the model card"


def get_engine(config: BuildConfig):
    """One translation engine per process and model settings (Dask workers reuse theirs)."""
    if config.model is None:
        raise ValueError("this corpus needs machine translation but the config has model: null")
    key = json.dumps([config.model, config.revision, config.quantization, config.decoding, config.engine,
                      config.cache, config.models_dir, config.tiny_model_dir], sort_keys=True, default=str)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = _make_engine(config)
            _TRANSLATE_LOCKS[id(_ENGINES[key])] = threading.Lock()
        return _ENGINES[key]


def _make_engine(config: BuildConfig):
    from polyqa.translate.engine import DecodingSettings, TranslationEngine

    models_dir = Path(os.path.expanduser(config.models_dir))
    model: Any = config.model
    if model == "tiny":
        from polyqa.translate.tiny import build_tiny_model

        tiny_dir = Path(os.path.expanduser(config.tiny_model_dir)) if config.tiny_model_dir else models_dir / "tiny-nllb"
        model = build_tiny_model(tiny_dir).ct2_dir
    cache = None
    if config.cache:
        from polyqa.translate.cache import TranslationCache

        cache_path = Path(os.path.expanduser(config.cache))
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache = TranslationCache(cache_path)
    return TranslationEngine(
        str(model),
        quantization=config.quantization,
        revision=config.revision,
        models_dir=models_dir,
        cache=cache,
        decoding=DecodingSettings(**config.decoding),
        **config.engine,
    )


def close_engines() -> None:
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.close()
        _ENGINES.clear()
        _TRANSLATE_LOCKS.clear()


def model_description(config: BuildConfig, engine: Any | None) -> dict[str, Any]:
    info: dict[str, Any] = {"model": config.model, "revision": config.revision,
                            "quantization": config.quantization, "license": model_license(config.model)}
    if engine is not None:
        info["model_info"] = dict(getattr(engine, "model_info", {}) or {})
        info["model_fingerprint"] = getattr(engine, "model_fingerprint", None)
        decoding = getattr(engine, "decoding", None)
        info["decoding"] = asdict(decoding) if decoding is not None else dict(config.decoding)
    else:
        info["decoding"] = dict(config.decoding)
    return info


# --------------------------------------------------------------------------- stage 1: ingest


def work_dir(corpus_dir: str | Path) -> Path:
    return Path(corpus_dir) / WORK_DIR


@lru_cache(maxsize=4096)  # passages repeat across their questions; bounded, so memory stays flat
def split_sentences(passage: str, lang: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    from polyqa.segment import split_sentences as split

    sentences = split(passage, lang)
    return tuple(s.text for s in sentences), tuple(s.start for s in sentences)


def _to_stage_row(record: Any) -> dict[str, Any]:
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
    return {
        "qa_id": record.qa_id, "passage_id": record.passage_id, "source": record.source,
        "license": record.license, "title": english.title, "question": english.question,
        "passage": english.passage, "sentences": sentences, "sentence_starts": starts,
        "answer_text": english.answer_text, "answer_start": english.answer_start,
        "translations": translations,
    }


def _stage_records(config: BuildConfig, corpus_dir: Path, stage_tmp: Path, normalizer: Any,
                   log: Callable[[str], None]) -> tuple[int, int, list[dict[str, Any]], int, dict[str, int]]:
    """Normalise every source into the staging file (one batch per shard) and the quarantine."""
    from polyqa.sources.base import Quarantined, open_source, resolve_spec, source_name

    sources: list[dict[str, Any]] = []
    buffer: list[dict[str, Any]] = []
    n_shards = records = 0
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
                buffer.append(_to_stage_row(out))
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
    return records, n_shards, sources, quarantine_rows, reasons


def ingest(config: BuildConfig, corpus_dir: str | Path, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Stream the sources into staged shards of English records; returns the ingest summary.

    Reuses a finished ingest of the same configuration (resume).
    """
    from polyqa.corpus.writer import sha256_file
    from polyqa.normalize import LeakageGuard, Normalizer

    corpus_dir = Path(corpus_dir)
    work = work_dir(corpus_dir)
    info_path = work / INGEST_FILE
    if info_path.exists() and (work / STAGE_FILE).exists():
        info = json.loads(info_path.read_text("utf-8"))
        if info.get("config_fingerprint") == config.fingerprint():
            log(f"ingest: reusing {info['records']} staged records ({info['n_shards']} shards)")
            return info
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    guard = LeakageGuard(config.exclude_passages_from) if config.exclude_passages_from else None
    # With no MT model every record must bring all languages itself (parallel imports).
    normalizer = Normalizer(guard, required_languages=config.languages if config.model is None else (),
                            dedup_questions=config.dedup_questions)
    stage_tmp = work / f".{STAGE_FILE}.tmp-{os.getpid()}"
    try:
        records, n_shards, sources, quarantine_rows, reasons = _stage_records(
            config, corpus_dir, stage_tmp, normalizer, log)
        os.replace(stage_tmp, work / STAGE_FILE)
    finally:
        stage_tmp.unlink(missing_ok=True)  # only left behind when staging failed
    if records == 0:
        raise ValueError(f"no usable records in the configured sources ({quarantine_rows} quarantined; "
                         f"see {corpus_dir / 'quarantine.arrow'})")
    stats = normalizer.stats()
    info = {
        "config_fingerprint": config.fingerprint(), "records": records, "n_shards": n_shards,
        "shard_rows": config.shard_rows, "sources": sources,
        # Identifies the staged English records: shards built from other records are not reused.
        "records_sha256": sha256_file(work / STAGE_FILE),
        "filters": {**{k: v for k, v in stats.items() if k != "kept_by_source"},
                    "leakage_guard_files": list(config.exclude_passages_from),
                    "leakage_guard_passages": len(guard.keys) if guard else 0},
        "quarantine": {"rows": quarantine_rows, "reasons": reasons},
        "seconds": round(time.perf_counter() - started, 3),
    }
    atomic_write_bytes(info_path, json.dumps(info, indent=2).encode())
    log(f"ingest: {records} records in {n_shards} shards, {quarantine_rows} quarantined, "
        f"{stats['leakage_excluded']} excluded by the leakage guard")
    return info


def read_stage_shard(corpus_dir: str | Path, index: int) -> list[dict[str, Any]]:
    path = work_dir(corpus_dir) / STAGE_FILE
    with pa.memory_map(str(path)) as source:
        reader = ipc.open_file(source)
        if not 0 <= index < reader.num_record_batches:
            raise IndexError(f"{path}: no staged shard {index} (have {reader.num_record_batches})")
        return reader.get_batch(index).to_pylist()


# --------------------------------------------------------------------------- stage 2: one language shard


def sentence_index(starts: list[int], sentences: list[str], offset: int | None) -> int | None:
    """Index of the sentence holding character ``offset`` (the last one starting before it)."""
    if offset is None or not starts:
        return None
    best = None
    for i, start in enumerate(starts):
        if start <= offset:
            best = i
        else:
            break
    return best


def _neutral_quality() -> dict[str, Any]:
    return {"quality_langid": None, "quality_langid_score": None, "quality_length_ratio": None,
            "quality_repetition": None, "quality_flags": [], "quality_pass": True}


def original_row(record: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """A row of text that was not machine translated (English, or an imported language)."""
    if lang == ENGLISH:
        text = record
        title = record["title"]
    else:
        text = json.loads(record["translations"])[lang]
        title = text.get("title") or record["title"]
    return {
        "qa_id": record["qa_id"], "passage_id": record["passage_id"], "lang": lang, "title": title,
        "question": text["question"], "passage": text["passage"], "sentences": text["sentences"],
        "sentence_starts": text["sentence_starts"], "answer_text": text["answer_text"],
        "answer_start": text["answer_start"],
        "answer_sentence": sentence_index(text["sentence_starts"], text["sentences"], text["answer_start"]),
        "answer_projection": PROJECTION_SOURCE, "source": record["source"], "license": record["license"],
        "translated": False, **_neutral_quality(),
    }


def translated_row(record: Mapping[str, Any], lang: str, translation: Mapping[str, str],
                   thresholds: QualityThresholds) -> dict[str, Any]:
    """A machine-translated row: sentences joined, answer projected, quality scored."""
    from polyqa.segment import join_translated

    english_starts, english_sentences = record["sentence_starts"], record["sentences"]
    separators = [record["passage"][english_starts[i] + len(english_sentences[i]):english_starts[i + 1]]
                  for i in range(len(english_sentences) - 1)]
    # join_translated strips each sentence; the row keeps the stripped ones so offsets hold.
    sentences = [translation[s].strip() for s in english_sentences]
    passage, starts = join_translated(sentences, lang, separators)
    question = translation[record["question"]]
    answer = translation[record["answer_text"]]
    # Look in the sentence aligned with the English answer's sentence first, then everywhere.
    english_sentence = sentence_index(record["sentence_starts"], record["sentences"], record["answer_start"])
    projection = None
    if english_sentence is not None and english_sentence < len(sentences):
        local = project_answer(answer, sentences[english_sentence], thresholds.fuzzy_threshold)
        if local.start is not None:
            local.start += starts[english_sentence]
            projection = local
    if projection is None:
        projection = project_answer(answer, passage, thresholds.fuzzy_threshold)
    scores = score_text(question, passage, record["question"], record["passage"], lang, thresholds)
    if not answer.strip():
        scores.flags.append("empty_answer")
    return {
        "qa_id": record["qa_id"], "passage_id": record["passage_id"], "lang": lang, "title": record["title"],
        "question": question, "passage": passage, "sentences": sentences, "sentence_starts": starts,
        "answer_text": projection.text if projection.start is not None else answer,
        "answer_start": projection.start,
        "answer_sentence": sentence_index(starts, sentences, projection.start),
        "answer_projection": projection.kind, "source": record["source"], "license": record["license"],
        "translated": True, "quality_langid": scores.langid, "quality_langid_score": scores.langid_score,
        "quality_length_ratio": scores.length_ratio, "quality_repetition": scores.repetition,
        "quality_flags": list(scores.flags), "quality_pass": scores.passed,
    }


def unique_segments(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The shard's distinct English segments (questions, passage sentences, answers), first-seen order."""
    seen: dict[str, None] = {}
    for r in records:
        seen.setdefault(r["question"], None)
        for sentence in r["sentences"]:
            seen.setdefault(sentence, None)
        seen.setdefault(r["answer_text"], None)
    return list(seen)


def translate_segments(engine: Any, segments: list[str], lang: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Translate the segments into ``lang``; returns {English: translation} and the engine stats used."""
    lock = _TRANSLATE_LOCKS.setdefault(id(engine), threading.Lock())
    with lock:  # so the stats delta belongs to this call alone
        before = engine.stats.as_dict()
        out = engine.translate_many(segments, ENGLISH, [lang])[lang]
        after = engine.stats.as_dict()
    delta = {k: (after[k] - before.get(k, 0)) for k in after if isinstance(after[k], (int, float))}
    if "seconds" in delta:
        delta["seconds"] = round(delta["seconds"], 3)
    return dict(zip(segments, out)), delta


def shard_statistics(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    flags: Counter[str] = Counter()
    for r in rows:
        flags.update(r["quality_flags"])
    return {
        "rows": len(rows),
        "translated": sum(1 for r in rows if r["translated"]),
        "quality_pass": sum(1 for r in rows if r["quality_pass"]),
        "quality_flags": dict(flags),
        "projection": dict(Counter(r["answer_projection"] for r in rows)),
        "langid_scored": sum(1 for r in rows if r["quality_langid_score"] is not None),
        "passage_chars": sum(len(r["passage"]) for r in rows),
        "question_chars": sum(len(r["question"]) for r in rows),
    }


def language_shard_rows(corpus_dir: str | Path, config: BuildConfig, index: int, lang: str,
                        engine: Any | None = None) -> tuple[pa.Table, dict[str, Any]]:
    """The rows of shard ``index`` in ``lang`` (translated where needed) and facts for the manifest."""
    started = time.perf_counter()
    records = read_stage_shard(corpus_dir, index)
    extras: dict[str, Any] = {"translation": {}}
    if lang == ENGLISH:
        rows = [original_row(r, lang) for r in records]
    else:
        imported = [r["translations"] is not None and lang in json.loads(r["translations"]) for r in records]
        to_translate = [r for r, has in zip(records, imported) if not has]
        translation: dict[str, str] = {}
        if to_translate:
            engine = engine if engine is not None else get_engine(config)
            translation, extras["translation"] = translate_segments(engine, unique_segments(to_translate), lang)
            extras["_model"] = model_description(config, engine)
        thresholds = config.thresholds()
        rows = [original_row(r, lang) if has else translated_row(r, lang, translation, thresholds)
                for r, has in zip(records, imported)]
    extras["stats"] = shard_statistics(rows)
    extras["seconds"] = round(time.perf_counter() - started, 3)
    return rows_table(rows), extras


def write_language_shard(corpus_dir: str | Path, config: BuildConfig, index: int, lang: str, n_shards: int,
                         table: pa.Table, extras: Mapping[str, Any]) -> dict[str, Any]:
    """Write the shard file atomically; returns its manifest entry (recorded by :func:`record_shard`)."""
    written = write_shard(corpus_dir, table, lang=lang, index=index, total=n_shards,
                          fmt=config.format, compression=config.compression)
    return {**written.as_dict(), **extras}


def build_language_shard(corpus_dir: str | Path, config: BuildConfig, index: int, lang: str, n_shards: int,
                         engine: Any | None = None) -> dict[str, Any]:
    """Build and write shard ``index`` of ``lang``; returns its manifest entry (not yet recorded)."""
    table, extras = language_shard_rows(corpus_dir, config, index, lang, engine)
    return write_language_shard(corpus_dir, config, index, lang, n_shards, table, extras)


def rows_table(rows: list[Mapping[str, Any]]) -> pa.Table:
    from polyqa.corpus.writer import to_corpus_table

    return to_corpus_table(rows)


# --------------------------------------------------------------------------- stage 3/4: manifest, finish


def open_manifest(corpus_dir: str | Path, config: BuildConfig, ingest_info: Mapping[str, Any]) -> Manifest:
    """The corpus manifest, created or resumed; refuses a folder built from another config."""
    corpus_dir = Path(corpus_dir)
    manifest = Manifest.load(corpus_dir)
    if manifest is not None and manifest.get("config_fingerprint") != config.fingerprint():
        raise CorpusConflictError(
            f"{corpus_dir} holds a corpus built from a different configuration "
            f"({manifest.get('config_fingerprint')} != {config.fingerprint()}); "
            "choose another --output or pass --overwrite")
    if manifest is None:
        manifest = Manifest()
        manifest["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest["build_seconds"] = 0.0
    if manifest.get("n_shards") not in (None, ingest_info["n_shards"]) or \
            manifest.get("records_sha256") not in (None, ingest_info.get("records_sha256")):
        manifest.data["shards"] = []  # the sources gave other records: no shard can be reused
    manifest.data.update({
        "name": config.name, "schema_version": SCHEMA_VERSION, "config_fingerprint": config.fingerprint(),
        "config": config.as_dict(), "languages": config.all_languages, "format": config.format,
        "compression": config.compression, "n_shards": ingest_info["n_shards"],
        "shard_rows": config.shard_rows, "records": ingest_info["records"],
        "records_sha256": ingest_info.get("records_sha256"),
        "sources": ingest_info["sources"], "filters": ingest_info["filters"],
        "quarantine": {**ingest_info["quarantine"], "file": "quarantine.arrow"},
        "code_version": code_version(), "complete": False,
    })
    manifest.data.setdefault("mt_model", model_description(config, None))
    manifest.save(corpus_dir)
    return manifest


def record_shard(manifest: Manifest, corpus_dir: str | Path, entry: dict[str, Any]) -> None:
    """Add a written shard to the manifest and save it atomically."""
    entry = dict(entry)
    model = entry.pop("_model", None)
    if model is not None:
        manifest["mt_model"] = model
    manifest.add_shard(entry)
    manifest.save(corpus_dir)


def pending_shards(manifest: Manifest, corpus_dir: str | Path, languages: list[str], n_shards: int
                   ) -> list[tuple[int, str]]:
    """(shard, language) pairs still to build: not in the manifest, or failing their checksum."""
    return [(k, lang) for k in range(n_shards) for lang in languages
            if not manifest.verified(corpus_dir, lang, k)]


def totals(manifest: Manifest) -> dict[str, Any]:
    """Per-language and overall statistics summed over the manifest's shard entries."""
    per_lang: dict[str, dict[str, Any]] = {}
    translation: Counter[str] = Counter()
    for e in manifest.shards:
        s = per_lang.setdefault(e["lang"], {"rows": 0, "translated": 0, "quality_pass": 0, "quality_flags": Counter(),
                                            "projection": Counter(), "passage_chars": 0, "question_chars": 0,
                                            "shards": 0, "bytes": 0})
        st = e.get("stats", {})
        s["rows"] += e["rows"]
        s["shards"] += 1
        s["bytes"] += e.get("bytes", 0)
        for key in ("translated", "quality_pass", "passage_chars", "question_chars"):
            s[key] += st.get(key, 0)
        s["quality_flags"].update(st.get("quality_flags", {}))
        s["projection"].update(st.get("projection", {}))
        translation.update({k: v for k, v in e.get("translation", {}).items() if isinstance(v, (int, float))})
    for s in per_lang.values():
        s["quality_flags"], s["projection"] = dict(s["quality_flags"]), dict(s["projection"])
    if "seconds" in translation:
        translation["seconds"] = round(translation["seconds"], 3)
    return {"languages": per_lang, "translation": dict(translation)}


def finalize(manifest: Manifest, corpus_dir: str | Path, config: BuildConfig, *, run_seconds: float,
             cards_dir: str | Path | None = None) -> Manifest:
    """Total the statistics, mark the manifest complete, write the data cards, drop the staging area."""
    from polyqa.cards import write_cards

    corpus_dir = Path(corpus_dir)
    missing = pending_shards(manifest, corpus_dir, config.all_languages, manifest["n_shards"])
    if missing:
        raise RuntimeError(f"{corpus_dir}: {len(missing)} shards are still missing or fail their checksum: "
                           f"{missing[:5]}")
    summary = totals(manifest)
    manifest["statistics"] = summary["languages"]
    manifest["translation"] = summary["translation"]
    manifest["build_seconds"] = round(float(manifest.get("build_seconds") or 0.0) + run_seconds, 3)
    manifest["complete"] = True
    manifest["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest.save(corpus_dir)
    target = cards_dir if cards_dir is not None else config.card_dir
    write_cards(corpus_dir, manifest, target)
    shutil.rmtree(work_dir(corpus_dir), ignore_errors=True)
    return manifest


def is_complete(corpus_dir: str | Path, config: BuildConfig) -> bool:
    manifest = Manifest.load(corpus_dir)
    return bool(manifest and manifest.get("complete") and manifest.get("config_fingerprint") == config.fingerprint()
                and not pending_shards(manifest, corpus_dir, config.all_languages, manifest["n_shards"]))


def prepare_output(corpus_dir: str | Path, overwrite: bool) -> Path:
    """Create the output folder; with ``overwrite``, clear a previous polyqa corpus (never other folders)."""
    corpus_dir = Path(corpus_dir)
    if overwrite and corpus_dir.exists():
        if not (corpus_dir / "manifest.json").exists() and any(corpus_dir.iterdir()):
            raise CorpusConflictError(f"{corpus_dir} is not empty and holds no polyqa manifest; not deleting it")
        shutil.rmtree(corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    return corpus_dir


def build_corpus(config: BuildConfig | Mapping[str, Any] | str | Path | None, corpus_dir: str | Path, *,
                 overwrite: bool = False, cards_dir: str | Path | None = None, progress: bool = False,
                 log: Callable[[str], None] = lambda _: None) -> Manifest:
    """Build (or resume) a corpus sequentially; the CLI path. Returns the final manifest."""
    config = load_config(config)
    started = time.perf_counter()
    corpus_dir = prepare_output(corpus_dir, overwrite)
    if is_complete(corpus_dir, config):
        log(f"{corpus_dir}: complete and verified; nothing to do")
        return Manifest.load(corpus_dir)  # type: ignore[return-value]
    info = ingest(config, corpus_dir, log)
    manifest = open_manifest(corpus_dir, config, info)
    todo = pending_shards(manifest, corpus_dir, config.all_languages, info["n_shards"])
    total = info["n_shards"] * len(config.all_languages)
    log(f"{total - len(todo)} of {total} shards already done; building {len(todo)}")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - len(todo), unit="shard", desc=f"build {config.name}")
    try:
        for k, lang in todo:
            entry = build_language_shard(corpus_dir, config, k, lang, info["n_shards"])
            record_shard(manifest, corpus_dir, entry)
            if bar is not None:
                bar.set_postfix_str(f"shard {k} {lang}")
                bar.update(1)
            else:
                log(f"shard {k} {lang}: {entry['rows']} rows")
    finally:
        if bar is not None:
            bar.close()
    return finalize(manifest, corpus_dir, config, run_seconds=time.perf_counter() - started, cards_dir=cards_dir)

