"""One corpus build as a job: opened once, its units built anywhere, recorded and finished by its owner.

    with BuildJob.open(config, output, refresh=True) as job:  # output locked and checked, sources ingested
        for unit in job.units:                                 # the (shard, language) pairs still to build
            job.record(job.build_unit(unit))
        manifest = job.finish()                                # statistics totalled, card written, lock released

A unit is built by :func:`build_unit` (config, output, unit), a plain function
that builds the rows AND writes the shard file in the process that runs it: on
Dask, the Arrow table stays on the worker and only the small
:class:`UnitResult` travels back. :meth:`BuildJob.record` is the manifest's
single writer and runs in the process that opened the job; it records every
unit as it finishes (:meth:`Manifest.record_shard`), so a killed build resumes
where it stopped.

:func:`build_corpus` is the sequential loop (``polyqa build-corpus``, the study);
``flows/build_corpus.py`` runs the same job with one Prefect task per unit.

What a user can rely on:

- One writer per output: the job holds an exclusive :class:`~polyqa.locking.OutputLock`
  from :meth:`BuildJob.open` until :meth:`BuildJob.finish` or :meth:`BuildJob.close`;
  a second build refuses at once naming the holder (or waits ``wait`` seconds). The OS
  drops the lock when a build dies, so a killed build leaves none behind. On object
  storage (``s3://``, ``gs://``; see :mod:`polyqa.storage`) the lock is a
  :class:`~polyqa.locking.LeaseLock`, checked before every manifest write.
- Nothing of the user's is deleted: what polyqa owns in the folder, and the only
  deletions it makes there, are :mod:`polyqa.corpus.output`'s.
- Crash anywhere, resume to the same bytes: every file appears under its name only
  once complete, the manifest lists a shard only after its file is in place, the
  next open removes temporary files of the dead build and rebuilds exactly the
  shards the manifest lacks or whose checksum fails.
- Corruption is repaired, never trusted: a shard failing its checksum is rebuilt,
  a manifest that cannot be read is set aside as ``manifest.json.damaged-<stamp>``
  (never deleted) and the corpus built again (the translation cache makes it
  cheap), and shard files the manifest does not list are removed when the build finishes.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from polyqa import paths, storage
from polyqa.corpus.config import BuildConfig, load_config
from polyqa.corpus.engines import (
    close_engines,
    get_engine,
    model_description,
    translate_segments,
)
from polyqa.corpus.ingest import (
    WORK_DIR,
    ingest,
    quarantine_intact,
    read_stage_shard,
    work_dir,
)
from polyqa.corpus.manifest import Manifest
from polyqa.corpus.progress import BuildProgress
from polyqa.corpus.translations import prepare_seed, seed_cache, unlisted_parts, write_part
from polyqa.languages import ENGLISH
from polyqa.corpus.output import (
    CARD_FILE,
    CorpusConflictError,
    claim_output,
    load_manifest,
    names,
    own_card,
    refuse_foreign,
    remember_card,
    remove_own_files,
    remove_shard_files,
    remove_temporary,
    stamp,
    unlisted_shards,
    write_marker,
)
from polyqa.corpus.rows import (
    ShardStats,
    is_imported,
    language_rows,
    shard_statistics,
    unique_segments,
)
from polyqa.corpus.writer import (
    WrittenShard,
    to_corpus_table,
    write_shard,
)
from polyqa.locking import (
    LeaseLock,
    OutputLock,
    OutputLockedError,
    output_lock,
)
from polyqa.storage import AnyPath
from polyqa.translate.engine import TranslationStats

Log = Callable[[str], None]
PROGRESS_EVERY = 30.0  # seconds between per-language progress reports


def _silent(_: str) -> None:
    pass


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
    stages: dict[str, float]  # seconds by stage: read, engine, seed, segments, translate, rows, table
    translations: dict[str, str]  # English segment -> translation, for the translation store
    key_prefix: str | None  # the cache key prefix of those translations (model, decoding, languages)


@dataclass(frozen=True)
class UnitResult:
    """What a built and written unit reports back to the job: small, whatever the shard's size."""

    shard: WrittenShard  # lang, index, path, rows, bytes, sha256, qa_ids_sha256
    stats: ShardStats
    translation: TranslationStats | None
    seconds: float  # building the rows (translation included), not writing them
    model: dict[str, Any] | None = None
    stages: dict[str, float] | None = None  # seconds by stage, writing included (see UnitRows)
    store: dict[str, Any] | None = None  # the unit's part of the translation store: path, rows, sha256

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
    clock = _StageClock()
    records = read_stage_shard(output, unit.index)
    clock.lap("read")
    to_translate = [r for r in records if not is_imported(r, unit.lang)]
    translation: dict[str, str] = {}
    work = model = key_prefix = None
    markers = config.projection_settings()
    if to_translate:
        engine = get_engine(config)
        clock.lap("engine")  # loading the model (once per process)
        seed_cache(engine, output, unit.lang)  # what earlier builds of this corpus translated, once per process
        key_prefix = engine.key_prefix(ENGLISH, unit.lang)
        clock.lap("seed")
        segments = unique_segments(to_translate, markers)
        clock.lap("segments")
        # Marked answer sentences go through the same call: cached, batched and counted like the rest.
        translation, work = translate_segments(engine, segments, unit.lang)
        model = model_description(config, engine)
        clock.lap("translate")
    rows = language_rows(records, unit.lang, translation, config.thresholds(), markers)
    clock.lap("rows")  # projection and quality
    table = to_corpus_table(rows)
    clock.lap("table")
    return UnitRows(unit, table, shard_statistics(rows), work, model, clock.total(), clock.stages, translation,
                    key_prefix)


def write_unit(config: BuildConfig | Mapping[str, Any], output: str | Path, built: UnitRows) -> UnitResult:
    """Write a unit's shard file atomically; returns what the manifest records of it."""
    config = load_config(config)
    unit = built.unit
    clock = _StageClock()
    written = write_shard(output, built.table, lang=unit.lang, index=unit.index, total=unit.n_shards,
                          fmt=config.format, compression=config.compression)
    store = None
    if built.translations and built.key_prefix:
        store = write_part(storage.as_path(output), unit.lang, unit.index, unit.n_shards, built.key_prefix,
                           built.translations)
    clock.lap("write")
    return UnitResult(written, built.stats, built.translation, built.seconds, built.model,
                      {**built.stages, **clock.stages}, store)


class _StageClock:
    """Seconds between laps, by stage name (rounded to the millisecond, as the manifest keeps them)."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round(now - self.last, 3)
        self.last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def build_unit(config: BuildConfig | Mapping[str, Any], output: str | Path, unit: Unit) -> UnitResult:
    """Build and write ``unit`` where this runs; only the returned record has to travel."""
    return write_unit(config, output, assemble_unit(config, output, unit))


def _pending(manifest: Manifest, output: AnyPath, languages: list[str], n_shards: int) -> list[Unit]:
    """Units not in the manifest, or whose file fails its checksum."""
    return [Unit(k, lang, n_shards) for k in range(n_shards) for lang in languages
            if not manifest.verified(output, lang, k)]


class BuildJob:
    """An opened build of one config into one output folder; see the module docstring.

    The job holds the output's lock until :meth:`finish` or :meth:`close`; use it as a context
    manager so a failure releases it too.
    """

    def __init__(self, config: BuildConfig, output: AnyPath, manifest: Manifest, units: list[Unit], *,
                 up_to_date: bool, cards_dir: str | Path | None, log: Log, started: float,
                 lock: OutputLock | LeaseLock | None = None, marker: dict[str, Any] | None = None):
        self.config = config
        self.output = output
        self.manifest = manifest
        self.units = units  # still to build, in shard then language order
        self.up_to_date = up_to_date  # complete and verified when opened: nothing to build or write
        self.cards_dir = cards_dir
        self.log = log
        self._started = started
        self._lock = lock
        self._marker = marker if marker is not None else {}
        self._manifest_seconds = 0.0  # recording each unit in the manifest
        self.progress = BuildProgress.for_units(config.all_languages, manifest.n_shards or 0,
                                                [(u.index, u.lang) for u in units], manifest.shards)

    @classmethod
    def open(cls, config: BuildConfig | Mapping[str, Any] | str | Path | None, output: str | Path, *,
             overwrite: bool = False, refresh: bool = False, allow_non_empty: bool = False, wait: float = 0.0,
             cards_dir: str | Path | None = None, log: Log = _silent) -> BuildJob:
        """Open (or resume) the build of ``config`` into ``output``, holding the output's lock.

        ``config``: a BuildConfig, a mapping, a YAML path, or None for the embedded default.
        ``overwrite`` deletes the corpus polyqa wrote in ``output`` first (never other files).
        ``refresh`` rebuilds a corpus of another configuration in ``output`` (the translation cache
        makes text translated before free) instead of refusing it; a complete corpus of this
        configuration is left alone either way. ``allow_non_empty`` builds into a folder polyqa
        did not create, beside its files. ``wait``: seconds to wait for another build of the same
        output to finish before refusing (0: refuse at once).
        """
        started = time.perf_counter()
        config = load_config(config)
        output = storage.as_path(output)
        storage.check_writable(output)  # a store polyqa cannot write safely is refused before any access
        if output.exists() and not output.is_dir():
            raise CorpusConflictError("the output is a file, not a folder", where=str(output),
                                      todo="pass a new folder, or a corpus folder, as --output")
        if output.is_dir():  # refused before the lock file is made, so a refused folder is left as it was
            refuse_foreign(output, overwrite=overwrite, allow_non_empty=allow_non_empty)
        what = f"polyqa build-corpus ({config.name})"
        try:
            lock = output_lock(output, what).acquire()
        except OutputLockedError as exc:
            if wait <= 0:
                raise OutputLockedError(exc.what, where=exc.where, todo="wait for it to finish (--wait SECONDS, "
                                        "or the flow's wait, waits for it), or choose another output") from None
            log(f"{exc.what}; waiting up to {wait:g} s for it to finish")
            lock = output_lock(output, what, wait=wait).acquire()
        try:
            return cls._open_locked(config, output, lock, overwrite=overwrite, refresh=refresh,
                                    allow_non_empty=allow_non_empty, cards_dir=cards_dir, log=log, started=started)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, config: BuildConfig, output: AnyPath, lock: OutputLock | LeaseLock, *, overwrite: bool, refresh: bool,
                     allow_non_empty: bool, cards_dir: str | Path | None, log: Log, started: float) -> BuildJob:
        marker = claim_output(output, overwrite=overwrite, allow_non_empty=allow_non_empty, log=log)
        remove_temporary(output, log)  # we hold the lock: whoever wrote them is gone
        fingerprint = config.fingerprint()
        manifest = load_manifest(output, log)
        stale = refresh and not overwrite and manifest is not None \
            and manifest.get("config_fingerprint") != fingerprint
        if stale:
            log(f"{output}: configuration changed; rebuilding (cached translations are reused)")
        if overwrite or stale:
            remove_own_files(output, marker, log, keep_store=not overwrite)
            manifest = None
        if manifest is not None and manifest.get("config_fingerprint") != fingerprint:
            raise CorpusConflictError(
                f"the output holds a corpus built from a different configuration "
                f"({manifest.get('config_fingerprint')} != {fingerprint})", where=str(output),
                todo="choose another --output, or pass --overwrite (or --refresh to rebuild it)")
        job = dict(cards_dir=cards_dir, log=log, started=started, lock=lock, marker=marker)
        complete = manifest is not None and manifest.complete and \
            quarantine_intact(output, manifest.get("quarantine")) and \
            not _pending(manifest, output, config.all_languages, manifest.n_shards)
        if complete and refresh:
            # A scheduled refresh reads the sources again (the same config may name files that grew),
            # aside, so an unchanged corpus is left exactly as it was.
            with tempfile.TemporaryDirectory(prefix="polyqa-refresh-") as scratch:
                records = ingest(config, scratch).records_sha256
            if records != manifest.get("records_sha256"):
                log(f"{output}: the sources changed; rebuilding (translations of earlier builds are reused)")
                complete = False
        if complete:
            untidy = (output / WORK_DIR).exists() or not own_card(output, marker) or \
                bool(unlisted_shards(output, manifest))
            if not untidy:
                log(f"{output}: complete and verified; nothing to do")
                return cls(config, output, manifest, [], up_to_date=True, **job)
            log(f"{output}: complete and verified; tidying up (card, staging area, stray shard files)")
            return cls(config, output, manifest, [], up_to_date=False, **job)
        ingested = ingest(config, output, log)
        if config.model is not None:
            prepare_seed(output, log)  # before any unit replaces a part of the store
        manifest = manifest or Manifest()
        manifest.describe_build(config, ingested)
        if not manifest.model():
            manifest.set_model(model_description(config, None))
        manifest.save(output)
        units = _pending(manifest, output, config.all_languages, ingested.n_shards)
        total = ingested.n_shards * len(config.all_languages)
        log(f"{ingested.records} records, {ingested.n_shards} shards x {len(config.all_languages)} languages: "
            f"{total - len(units)} of {total} shards already done; building {len(units)}")
        return cls(config, output, manifest, units, up_to_date=False, **job)

    @property
    def total_units(self) -> int:
        return self.manifest.n_shards * len(self.config.all_languages)

    def build_unit(self, unit: Unit) -> UnitResult:
        """Build and write ``unit`` in this process (elsewhere: :func:`build_unit` with this config and output)."""
        return build_unit(self.config, self.output, unit)

    def record(self, result: UnitResult) -> None:
        """Add a written unit to the manifest and record it durably (only the process that opened the job does this)."""
        self._check_lock()
        if result.model is not None:
            self.manifest.set_model(result.model)
        started = time.perf_counter()
        self.manifest.record_shard(
            self.output, result.shard, translation=result.translation.as_dict() if result.translation else {},
            stats=result.stats.as_dict(), seconds=result.seconds, stages=result.stages or {},
            **({"translations": result.store} if result.store else {}))
        self._manifest_seconds += time.perf_counter() - started
        work = result.translation
        self.progress.record(result.lang, result.rows, work.translated if work else 0, work.cache_hits if work else 0)

    def finish(self) -> Manifest:
        """Total the statistics, mark the corpus complete, write the data cards, tidy up, release the output."""
        try:
            if self.up_to_date:
                return self.manifest
            missing = _pending(self.manifest, self.output, self.config.all_languages, self.manifest.n_shards)
            if missing:
                raise RuntimeError(f"{self.output}: {len(missing)} shards are still missing or fail their "
                                   f"checksum: {[(u.index, u.lang) for u in missing[:5]]}")
            self.manifest.total(run_seconds=time.perf_counter() - self._started)
            # Recording units is the job's own stage (this run's; the others are the units').
            self.manifest.data["stage_seconds"]["manifest"] = round(self._manifest_seconds, 3)
            self._check_lock()
            self.manifest.save(self.output)
            self._write_cards()
            listed = {e["translations"]["path"] for e in self.manifest.shards if e.get("translations")}
            stray = unlisted_shards(self.output, self.manifest) + unlisted_parts(self.output, listed)
            if stray:  # named like shards but not this corpus' (an older shard count, a removed language)
                remove_shard_files(self.output, stray)
                self.log(f"{self.output}: removed {len(stray)} shard files the manifest does not list "
                         f"({names(stray)})")
            storage.rmtree(work_dir(self.output), ignore_errors=True)
            remove_temporary(self.output, self.log)
            close_engines()  # the models are not needed once every unit is built
            return self.manifest
        finally:
            self.close()

    def _write_cards(self) -> None:
        """README.md and the cards_dir copy; a README.md that is not a card polyqa wrote is kept aside."""
        from polyqa.corpus.cards import render_card, write_cards

        card = self.output / CARD_FILE
        if card.exists() and not own_card(self.output, self._marker):
            kept = card.with_name(f"{CARD_FILE}.kept-{stamp()}")
            storage.move(card, kept)
            self.log(f"{card} was not written by polyqa (edited or put there); kept as {kept.name}")
        # Recorded before the card is written, so a build killed in between still knows the card is its own.
        expected = hashlib.sha256(render_card(self.manifest, self.output).encode("utf-8")).hexdigest()
        self._marker["cards"] = [*(c for c in self._marker.get("cards") or [] if c != expected), expected][-10:]
        write_marker(self.output, self._marker)
        cards_dir = self.cards_dir if self.cards_dir is not None else self.config.card_dir
        write_cards(self.output, self.manifest, paths.expand(cards_dir) if cards_dir else None)
        remember_card(self.output, self._marker)

    def _check_lock(self) -> None:
        """Raise unless the job still holds its output (a lease on object storage can be lost by stalling)."""
        if self._lock is not None:
            self._lock.check()

    def close(self) -> None:
        """Release the output (idempotent). A job closed before :meth:`finish` resumes on the next open."""
        if self._lock is not None:
            self._lock.release()

    def __getstate__(self) -> dict[str, Any]:
        # A copy in another process (a Prefect subflow's closure sent to Dask) never holds the lock.
        return {**self.__dict__, "_lock": None}

    def __enter__(self) -> BuildJob:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def build_corpus(config: BuildConfig | Mapping[str, Any] | str | Path | None, output: str | Path, *,
                 overwrite: bool = False, refresh: bool = False, allow_non_empty: bool = False, wait: float = 0.0,
                 cards_dir: str | Path | None = None, progress: bool = False, log: Log = _silent) -> Manifest:
    """Build (or resume, or refresh) a corpus sequentially in this process; returns the final manifest."""
    with BuildJob.open(config, output, overwrite=overwrite, refresh=refresh, allow_non_empty=allow_non_empty,
                       wait=wait, cards_dir=cards_dir, log=log) as job:
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
                if job.progress.due(PROGRESS_EVERY):
                    (bar.write if bar is not None else log)(job.progress.line())
        finally:
            if bar is not None:
                bar.close()
        return job.finish()
