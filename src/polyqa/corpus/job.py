"""One corpus build as a job: opened once, its units built anywhere, recorded and finished by its owner.

    job = BuildJob.open(config, output, refresh=True)   # config checked, output prepared, sources ingested
    for unit in job.units:                              # the (shard, language) pairs still to build
        job.record(job.build_unit(unit))
    manifest = job.finish()                             # statistics totalled, card written, staging removed

A unit is built by :func:`build_unit` (config, output, unit), a plain function
that builds the rows AND writes the shard file in the process that runs it: on
Dask, the Arrow table stays on the worker and only the small
:class:`UnitResult` travels back. :meth:`BuildJob.record` is the manifest's
single writer and runs in the process that opened the job; the manifest is
saved after every unit, so a killed build resumes where it stopped.

:func:`build_corpus` is the sequential loop (``polyqa build-corpus``, the study);
``flows/build_corpus.py`` runs the same job with one Prefect task per unit.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from polyqa import paths
from polyqa.corpus.config import BuildConfig, load_config
from polyqa.corpus.engines import close_engines, get_engine, model_description, translate_segments
from polyqa.corpus.ingest import ingest, read_stage_shard, work_dir
from polyqa.corpus.manifest import MANIFEST_FILE, Manifest
from polyqa.corpus.rows import ShardStats, is_imported, language_rows, shard_statistics, unique_segments
from polyqa.corpus.writer import WrittenShard, to_corpus_table, write_shard
from polyqa.translate.engine import TranslationStats

Log = Callable[[str], None]


def _silent(_: str) -> None:
    pass


class CorpusConflictError(RuntimeError):
    """The output folder holds a corpus built from a different configuration."""


@dataclass(frozen=True)
class Unit:
    """Shard ``index`` of language ``lang`` (of ``n_shards``): the unit of work of a build."""

    index: int
    lang: str
    n_shards: int


@dataclass(frozen=True)
class UnitRows:
    """A unit's rows before they are written; never leaves the process that built them."""

    unit: Unit
    table: pa.Table
    stats: ShardStats
    translation: TranslationStats | None  # None when no row needed machine translation
    model: dict[str, Any] | None  # the engine's description, when one was used
    seconds: float


@dataclass(frozen=True)
class UnitResult:
    """What a built and written unit reports back to the job: small, whatever the shard's size."""

    shard: WrittenShard  # lang, index, path, rows, bytes, sha256, qa_ids_sha256
    stats: ShardStats
    translation: TranslationStats | None
    seconds: float  # building the rows (translation included), not writing them
    model: dict[str, Any] | None = None

    @property
    def lang(self) -> str:
        return self.shard.lang

    @property
    def index(self) -> int:
        return self.shard.index

    @property
    def rows(self) -> int:
        return self.shard.rows


def assemble_unit(config: BuildConfig | Mapping[str, Any], output: str | Path, unit: Unit) -> UnitRows:
    """The rows of ``unit``: the staged records in its language, translated where they lack it."""
    config = load_config(config)
    started = time.perf_counter()
    records = read_stage_shard(output, unit.index)
    to_translate = [r for r in records if not is_imported(r, unit.lang)]
    translation: dict[str, str] = {}
    work = model = None
    if to_translate:
        engine = get_engine(config)
        translation, work = translate_segments(engine, unique_segments(to_translate), unit.lang)
        model = model_description(config, engine)
    rows = language_rows(records, unit.lang, translation, config.thresholds())
    table = to_corpus_table(rows)
    return UnitRows(unit, table, shard_statistics(rows), work, model, round(time.perf_counter() - started, 3))


def write_unit(config: BuildConfig | Mapping[str, Any], output: str | Path, built: UnitRows) -> UnitResult:
    """Write a unit's shard file atomically; returns what the manifest records of it."""
    config = load_config(config)
    unit = built.unit
    written = write_shard(output, built.table, lang=unit.lang, index=unit.index, total=unit.n_shards,
                          fmt=config.format, compression=config.compression)
    return UnitResult(written, built.stats, built.translation, built.seconds, built.model)


def build_unit(config: BuildConfig | Mapping[str, Any], output: str | Path, unit: Unit) -> UnitResult:
    """Build and write ``unit`` where this runs; only the returned record has to travel."""
    return write_unit(config, output, assemble_unit(config, output, unit))


def _prepare_output(output: Path, overwrite: bool) -> None:
    """Create the output folder; with ``overwrite``, clear a previous polyqa corpus (never other folders)."""
    if overwrite and output.exists():
        if not (output / MANIFEST_FILE).exists() and any(output.iterdir()):
            raise CorpusConflictError(f"{output} is not empty and holds no polyqa manifest; not deleting it")
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)


def _pending(manifest: Manifest, output: Path, languages: list[str], n_shards: int) -> list[Unit]:
    """Units not in the manifest, or whose file fails its checksum."""
    return [Unit(k, lang, n_shards) for k in range(n_shards) for lang in languages
            if not manifest.verified(output, lang, k)]


class BuildJob:
    """An opened build of one config into one output folder; see the module docstring."""

    def __init__(self, config: BuildConfig, output: Path, manifest: Manifest, units: list[Unit], *,
                 up_to_date: bool, cards_dir: str | Path | None, log: Log, started: float):
        self.config = config
        self.output = output
        self.manifest = manifest
        self.units = units  # still to build, in shard then language order
        self.up_to_date = up_to_date  # complete and verified when opened: nothing to build or write
        self.cards_dir = cards_dir
        self.log = log
        self._started = started

    @classmethod
    def open(cls, config: BuildConfig | Mapping[str, Any] | str | Path | None, output: str | Path, *,
             overwrite: bool = False, refresh: bool = False, cards_dir: str | Path | None = None,
             log: Log = _silent) -> BuildJob:
        """Open (or resume) the build of ``config`` into ``output``.

        ``config``: a BuildConfig, a mapping, a YAML path, or None for the embedded default.
        ``overwrite`` deletes a previous polyqa corpus in ``output`` first. ``refresh`` rebuilds a
        corpus of another configuration in ``output`` (the translation cache makes text translated
        before free) instead of refusing it; a complete corpus of this configuration is left alone
        either way.
        """
        started = time.perf_counter()
        config = load_config(config)
        output = Path(output)
        fingerprint = config.fingerprint()
        stale = False
        if refresh and not overwrite:
            previous = Manifest.load(output) if output.is_dir() else None
            stale = previous is not None and previous.get("config_fingerprint") != fingerprint
            if stale:
                log(f"{output}: configuration changed; rebuilding (cached translations are reused)")
        _prepare_output(output, overwrite or stale)
        manifest = Manifest.load(output)
        if manifest is not None and manifest.get("config_fingerprint") != fingerprint:
            raise CorpusConflictError(
                f"{output} holds a corpus built from a different configuration "
                f"({manifest.get('config_fingerprint')} != {fingerprint}); "
                "choose another --output, or pass --overwrite (or --refresh to rebuild it)")
        if manifest is not None and manifest.complete and \
                not _pending(manifest, output, config.all_languages, manifest.n_shards):
            log(f"{output}: complete and verified; nothing to do")
            return cls(config, output, manifest, [], up_to_date=True, cards_dir=cards_dir, log=log, started=started)
        ingested = ingest(config, output, log)
        manifest = manifest or Manifest()
        manifest.describe_build(config, ingested)
        if not manifest.model():
            manifest.set_model(model_description(config, None))
        manifest.save(output)
        units = _pending(manifest, output, config.all_languages, ingested.n_shards)
        total = ingested.n_shards * len(config.all_languages)
        log(f"{ingested.records} records, {ingested.n_shards} shards x {len(config.all_languages)} languages: "
            f"{total - len(units)} of {total} shards already done; building {len(units)}")
        return cls(config, output, manifest, units, up_to_date=False, cards_dir=cards_dir, log=log, started=started)

    @property
    def total_units(self) -> int:
        return self.manifest.n_shards * len(self.config.all_languages)

    def build_unit(self, unit: Unit) -> UnitResult:
        """Build and write ``unit`` in this process (elsewhere: :func:`build_unit` with this config and output)."""
        return build_unit(self.config, self.output, unit)

    def record(self, result: UnitResult) -> None:
        """Add a written unit to the manifest and save it (only the process that opened the job does this)."""
        if result.model is not None:
            self.manifest.set_model(result.model)
        self.manifest.add_shard(result.shard, translation=result.translation.as_dict() if result.translation else {},
                                stats=result.stats.as_dict(), seconds=result.seconds)
        self.manifest.save(self.output)

    def finish(self) -> Manifest:
        """Total the statistics, mark the corpus complete, write the data cards and drop the staging area."""
        if self.up_to_date:
            return self.manifest
        from polyqa.cards import write_cards

        missing = _pending(self.manifest, self.output, self.config.all_languages, self.manifest.n_shards)
        if missing:
            raise RuntimeError(f"{self.output}: {len(missing)} shards are still missing or fail their checksum: "
                               f"{[(u.index, u.lang) for u in missing[:5]]}")
        self.manifest.total(run_seconds=time.perf_counter() - self._started)
        self.manifest.save(self.output)
        cards_dir = self.cards_dir if self.cards_dir is not None else self.config.card_dir
        write_cards(self.output, self.manifest, paths.expand(cards_dir) if cards_dir else None)
        shutil.rmtree(work_dir(self.output), ignore_errors=True)
        close_engines()  # the models are not needed once every unit is built
        return self.manifest


def build_corpus(config: BuildConfig | Mapping[str, Any] | str | Path | None, output: str | Path, *,
                 overwrite: bool = False, refresh: bool = False, cards_dir: str | Path | None = None,
                 progress: bool = False, log: Log = _silent) -> Manifest:
    """Build (or resume, or refresh) a corpus sequentially in this process; returns the final manifest."""
    job = BuildJob.open(config, output, overwrite=overwrite, refresh=refresh, cards_dir=cards_dir, log=log)
    bar = None
    if progress and job.units:
        from tqdm import tqdm

        bar = tqdm(total=job.total_units, initial=job.total_units - len(job.units), unit="shard",
                   desc=f"build {job.config.name}")
    try:
        for unit in job.units:
            result = job.build_unit(unit)
            job.record(result)
            if bar is not None:
                bar.set_postfix_str(f"shard {unit.index} {unit.lang}")
                bar.update(1)
            else:
                log(f"shard {unit.index} {unit.lang}: {result.rows} rows")
    finally:
        if bar is not None:
            bar.close()
    return job.finish()
