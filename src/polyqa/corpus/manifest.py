"""``manifest.json``: what a corpus holds and how it was made; the record of finished shards.

A shard counts only once the manifest lists it with its sha256. A build writes the
manifest whole when it starts and when it finishes; in between, each finished shard is
recorded in a small file of its own under ``_work/recorded/`` (one atomic write or PUT),
which :meth:`Manifest.load` reads back into the list. Recording a shard thus costs the
same at the thousandth shard as at the first, and a killed build resumes from both.

This module owns the manifest's shape: readers (the card, validation, the
study) use :class:`Manifest`'s accessors rather than its JSON keys. Each shard
entry holds its own counts (``stats``, ``translation``); :meth:`Manifest.total`
sums them into ``statistics`` (per language) and ``translation``
(``{"totals": {...}, "per_language": {lang: {...}}}``) when a build finishes.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyqa import __version__, storage
from polyqa.corpus.schema import SCHEMA_VERSION, SENTENCE_NONE
from polyqa.storage import AnyPath, atomic_write_bytes
from polyqa.corpus.ingest import WORK_DIR
from polyqa.corpus.writer import QUARANTINE_FILE, WrittenShard, sha256_file
from polyqa.languages import ENGLISH

if TYPE_CHECKING:
    from polyqa.corpus.config import BuildConfig
    from polyqa.corpus.ingest import IngestSummary

MANIFEST_FILE = "manifest.json"
RECORDED_DIR = "recorded"  # in _work/: the shards finished since the manifest was last written whole
REQUIRED_KEYS = ("languages", "n_shards", "shards", "records")

# Translation work of a build, per target language and in total (a shard entry may carry more
# numeric engine counters; they are summed too).
TRANSLATION_KEYS = ("segments_requested", "unique_segments", "cache_hits", "translated", "source_tokens",
                    "target_tokens", "seconds", "model_seconds", "cache_seconds")


def code_version() -> dict[str, Any]:
    """polyqa's version and, when run from a git checkout, its commit (and whether it is dirty)."""
    info: dict[str, Any] = {"polyqa": __version__, "git_commit": None, "git_dirty": None}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10)
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                    capture_output=True, text=True, timeout=10)
            info["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Row statistics counted per value (ShardStats): quality flags, answer_projection kinds,
# answer_sentence_source values, marker outcomes.
COUNTED = ("quality_flags", "projection", "answer_sentence", "markers")


def language_statistics(shards: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per language: rows, shards, bytes and the shards' row statistics summed."""
    per_lang: dict[str, dict[str, Any]] = {}
    for e in shards:
        s = per_lang.setdefault(e["lang"], {"rows": 0, "translated": 0, "quality_pass": 0, "quality_flags": Counter(),
                                            "projection": Counter(), "answer_sentence": Counter(),
                                            "markers": Counter(), "passage_chars": 0, "question_chars": 0,
                                            "shards": 0, "bytes": 0})
        st = e.get("stats", {})
        s["rows"] += e["rows"]
        s["shards"] += 1
        s["bytes"] += e.get("bytes", 0)
        for key in ("translated", "quality_pass", "passage_chars", "question_chars"):
            s[key] += st.get(key, 0)
        for key in COUNTED:
            s[key].update(st.get(key, {}))
    for s in per_lang.values():
        for key in COUNTED:
            s[key] = dict(s[key])
    return per_lang


def _no_translation() -> dict[str, int | float]:
    return {key: 0.0 if key.endswith("seconds") else 0 for key in TRANSLATION_KEYS}


def translation_statistics(shards: Iterable[Mapping[str, Any]], languages: Iterable[str]) -> dict[str, Any]:
    """``{"totals": {...}, "per_language": {lang: {...}}}``: the shards' translation work summed.

    Every target language is listed (zeros when all its text was imported); totals are the sum of them.
    """
    per_language = {lang: _no_translation() for lang in languages if lang != ENGLISH}
    for e in shards:
        done = {k: v for k, v in (e.get("translation") or {}).items() if _number(v)}
        if done:
            target = per_language.setdefault(e["lang"], _no_translation())
            for key, value in done.items():
                target[key] = target.get(key, 0) + value
    totals = _no_translation()
    for counts in per_language.values():
        for key, value in counts.items():
            # Rounded before summing, so the totals are the sum of the languages as stored.
            counts[key] = round(value, 3) if key.endswith("seconds") else value
            totals[key] = totals.get(key, 0) + counts[key]
    for key in totals:
        if key.endswith("seconds"):
            totals[key] = round(totals[key], 3)
    return {"totals": totals, "per_language": per_language}


def stage_seconds(shards: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The shards' seconds by stage (read, segments, translate, rows, table, write), summed over the
    units of every build that made them: where a build's time went, whichever worker ran each unit."""
    totals: dict[str, float] = {}
    for e in shards:
        for stage, seconds in (e.get("stages") or {}).items():
            totals[stage] = totals.get(stage, 0.0) + float(seconds)
    return {stage: round(seconds, 3) for stage, seconds in totals.items()}


def recorded_dir(corpus_dir: str | Path | storage.RemotePath) -> AnyPath:
    return storage.as_path(corpus_dir) / WORK_DIR / RECORDED_DIR


class Manifest:
    """The manifest's JSON object (``data``) with the accessors readers use and the updates a build makes."""

    def __init__(self, data: dict[str, Any] | None = None):
        self.data: dict[str, Any] = data or {}
        self.data.setdefault("schema_version", SCHEMA_VERSION)
        self.data.setdefault("shards", [])

    # -- file -----------------------------------------------------------------
    @classmethod
    def load(cls, corpus_dir: str | Path | storage.RemotePath) -> Manifest | None:
        """The manifest with the shards recorded since it was last written whole (None when there is none)."""
        path = storage.as_path(corpus_dir) / MANIFEST_FILE
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a JSON object")
        manifest = cls(data)
        if not manifest.complete:
            manifest._read_recorded(corpus_dir)
        return manifest

    def save(self, corpus_dir: str | Path | storage.RemotePath) -> None:
        """Write the whole manifest; the shards recorded one by one are in it now, so their files go."""
        text = json.dumps(self.data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        atomic_write_bytes(storage.as_path(corpus_dir) / MANIFEST_FILE, text.encode("utf-8"))
        recorded = recorded_dir(corpus_dir)
        if recorded.exists():
            storage.rmtree(recorded, ignore_errors=True)

    def record_shard(self, corpus_dir: str | Path | storage.RemotePath, written: WrittenShard | dict[str, Any],
                     **extra: Any) -> None:
        """Add a finished shard and record it durably in a file of its own (see the module's note)."""
        entry = self.add_shard(written, **extra)
        # The records the shard was built from travel with it: a shard of other records is never merged back.
        record = {"records_sha256": self.get("records_sha256"), "shard": entry}
        atomic_write_bytes(recorded_dir(corpus_dir) / f"{entry['lang']}-{int(entry['index']):06d}.json",
                           json.dumps(record, ensure_ascii=False).encode("utf-8"))

    def _read_recorded(self, corpus_dir: str | Path | storage.RemotePath) -> None:
        recorded = recorded_dir(corpus_dir)
        if not recorded.exists():
            return
        entries = {(e["lang"], e["index"]): e for e in self.shards}
        for path in sorted(recorded.glob("*.json")):
            try:
                record = json.loads(path.read_text("utf-8"))
                entry = record["shard"]
                key = (entry["lang"], entry["index"])
            except FileNotFoundError:
                continue  # the build finished meanwhile and wrote the manifest whole
            except (ValueError, KeyError, TypeError):
                continue  # not a record polyqa finished writing: its shard is simply built again
            if record.get("records_sha256") == self.get("records_sha256"):
                entries[key] = entry
        self.data["shards"] = sorted(entries.values(), key=lambda e: (e["lang"], e["index"]))

    # -- shards ---------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    @property
    def shards(self) -> list[dict[str, Any]]:
        return self.data["shards"]

    def shard(self, lang: str, index: int) -> dict[str, Any] | None:
        for entry in self.shards:
            if entry["lang"] == lang and entry["index"] == index:
                return entry
        return None

    def add_shard(self, written: WrittenShard | dict[str, Any], **extra: Any) -> dict[str, Any]:
        entry = {**(written.as_dict() if isinstance(written, WrittenShard) else dict(written)), **extra}
        self.data["shards"] = [e for e in self.shards
                               if not (e["lang"] == entry["lang"] and e["index"] == entry["index"])]
        self.shards.append(entry)
        self.shards.sort(key=lambda e: (e["lang"], e["index"]))
        return entry

    def verified(self, corpus_dir: str | Path | storage.RemotePath, lang: str, index: int) -> bool:
        """True when the manifest lists this shard and the file's sha256 matches."""
        entry = self.shard(lang, index)
        if entry is None:
            return False
        path = storage.as_path(corpus_dir) / entry["path"]
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        return size == entry.get("bytes", size) and sha256_file(path) == entry["sha256"]

    def entries_for(self, lang: str) -> list[dict[str, Any]]:
        return [e for e in self.shards if e["lang"] == lang]


    # -- what the build recorded ----------------------------------------------
    def missing_keys(self) -> list[str]:
        return [key for key in REQUIRED_KEYS if key not in self.data]

    @property
    def name(self) -> str | None:
        return self.data.get("name")

    @property
    def languages(self) -> list[str]:
        """English first, then the target languages."""
        return list(self.data.get("languages") or [])

    @property
    def n_shards(self) -> int:
        return int(self.data.get("n_shards") or 0)

    @property
    def records(self) -> int:
        """English QA pairs (rows per language)."""
        return int(self.data.get("records") or 0)

    @property
    def complete(self) -> bool:
        return bool(self.data.get("complete"))

    @property
    def format(self) -> str:
        return self.data.get("format") or "arrow"

    @property
    def shard_rows(self) -> int | None:
        return self.data.get("shard_rows")

    def config(self) -> dict[str, Any]:
        """The build config as recorded (paths unexpanded)."""
        return dict(self.data.get("config") or {})

    def built_by(self) -> dict[str, Any]:
        """polyqa version and git commit of the build (see :func:`code_version`)."""
        return dict(self.data.get("code_version") or {})

    @property
    def build_seconds(self) -> float:
        return float(self.data.get("build_seconds") or 0.0)

    def total_rows(self) -> int:
        return sum(int(e["rows"]) for e in self.shards)

    def sources(self) -> list[dict[str, Any]]:
        return list(self.data.get("sources") or [])

    def filters(self) -> dict[str, Any]:
        return dict(self.data.get("filters") or {})

    def quarantine_rows(self) -> int:
        return int((self.data.get("quarantine") or {}).get("rows", 0))

    def quarantine_reasons(self) -> dict[str, int]:
        """Quarantined source rows per reason."""
        return dict((self.data.get("quarantine") or {}).get("reasons") or {})

    def model(self) -> dict[str, Any]:
        """The MT model: name, revision, quantization, license, and once used, what the engine reported."""
        return dict(self.data.get("mt_model") or {})

    def set_model(self, description: Mapping[str, Any]) -> None:
        self.data["mt_model"] = dict(description)

    def translates(self) -> bool:
        """True when some row is machine translated."""
        return any(e.get("stats", {}).get("translated") for e in self.shards)

    def statistics(self) -> dict[str, dict[str, Any]]:
        """Per language: rows, translated, quality_pass, quality_flags, projection (rows per
        answer_projection), answer_sentence (rows per answer_sentence_source), markers (translated
        rows per marker outcome), chars, shards, bytes. Corpora of schema 1.0 lack the last two."""
        stored = self.data.get("statistics")
        return stored if stored is not None else language_statistics(self.shards)

    def quality_per_language(self) -> dict[str, dict[str, Any]]:
        """Per language: rows, rows passing every quality check, and rows per failed check."""
        return {lang: {"rows": s["rows"], "quality_pass": s["quality_pass"], "quality_flags": s["quality_flags"]}
                for lang, s in self.statistics().items()}

    def answers_per_language(self) -> dict[str, dict[str, Any]]:
        """Per language: rows, rows with an answer sentence, and rows per answer_sentence_source,
        per answer_projection kind and per marker outcome."""
        out = {}
        for lang, s in self.statistics().items():
            sources = dict(s.get("answer_sentence") or {})
            out[lang] = {"rows": s["rows"], "answer_sentence": s["rows"] - sources.get(SENTENCE_NONE, 0)
                         if sources else None, "answer_sentence_source": sources,
                         "projection": dict(s.get("projection") or {}), "markers": dict(s.get("markers") or {})}
        return out

    def _translation(self) -> dict[str, Any]:
        stored = self.data.get("translation")
        if isinstance(stored, Mapping) and "per_language" in stored:
            return dict(stored)
        # Not totalled yet (a build in progress, or a corpus from before per-language totals).
        return translation_statistics(self.shards, self.languages)

    def translation_totals(self) -> dict[str, int | float]:
        """Translation work of the whole build: segments_requested, unique_segments, cache_hits,
        translated, source_tokens, target_tokens, seconds (and further engine counters)."""
        return dict(self._translation()["totals"])

    def translation_per_language(self) -> dict[str, dict[str, int | float]]:
        """The same counts per target language; every target is listed and they sum to the totals."""
        return {lang: dict(counts) for lang, counts in self._translation()["per_language"].items()}

    # -- writing (the build owns these) ---------------------------------------
    def describe_build(self, config: BuildConfig, ingested: IngestSummary) -> None:
        """Start or resume the record of a build of ``config`` from the ``ingested`` records."""
        self.data.setdefault("created", _now())
        self.data.setdefault("build_seconds", 0.0)
        if self.data.get("n_shards") not in (None, ingested.n_shards) or \
                self.data.get("records_sha256") not in (None, ingested.records_sha256):
            self.data["shards"] = []  # the sources gave other records: no shard can be reused
        self.data.update({
            "name": config.name, "schema_version": SCHEMA_VERSION, "config_fingerprint": config.fingerprint(),
            "config": config.as_dict(), "languages": config.all_languages, "format": config.format,
            "compression": config.compression, "n_shards": ingested.n_shards,
            "shard_rows": config.shard_rows, "records": ingested.records,
            "records_sha256": ingested.records_sha256,
            "sources": ingested.sources, "filters": ingested.filters,
            "quarantine": {**ingested.quarantine, "file": QUARANTINE_FILE},
            "ingest": {"seconds": ingested.seconds, "segment_seconds": ingested.segment_seconds},
            "code_version": code_version(), "complete": False,
        })

    def total(self, run_seconds: float) -> None:
        """Sum the shard entries into ``statistics`` and ``translation`` and mark the build complete."""
        self.data["statistics"] = language_statistics(self.shards)
        self.data["translation"] = translation_statistics(self.shards, self.languages)
        self.data["stage_seconds"] = stage_seconds(self.shards)
        self.data["build_seconds"] = round(self.build_seconds + run_seconds, 3)
        self.data["complete"] = True
        self.data["finished"] = _now()
