"""Prefect flow ``build-corpus``: a :class:`polyqa.corpus.job.BuildJob` with one task per unit.

The job does the build (config, ingest, manifest, rows, card); the flow adds
what Prefect gives: a task per (shard, language) unit with retries, the Dask
task runner, logs, and the ``polyqa.corpus.built`` event. A unit's task builds
AND writes its shard where it runs (on Dask, the worker), so only a small
``UnitResult`` comes back; the flow records each in the manifest as it lands,
so a crashed or cancelled run resumes: shards whose checksum verifies are
skipped.

Tasks run on Prefect's thread pool by default, or on Dask through
prefect-dask: ``dask_address="tcp://..."`` for an existing cluster,
``dask_workers=2`` for a LocalCluster of single-threaded workers, or
``dask={"n_workers": 2, "processes": False}`` for any LocalCluster arguments.

    python flows/build_corpus.py --output out/default-corpus   # a local run
    prefect deployment run build-corpus/default --watch         # via a server (see prefect.yaml)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.futures import as_completed

from polyqa import storage
from polyqa.corpus.config import BuildConfig
from polyqa.corpus.job import PROGRESS_EVERY, BuildJob, Unit, UnitResult, build_unit
from polyqa.corpus.manifest import Manifest


@task(name="build_shard", task_run_name="build-shard-{unit.index}-{unit.lang}", retries=2, retry_delay_seconds=5,
      cache_policy=NO_CACHE)
def build_shard(config: BuildConfig, output: str, unit: Unit) -> UnitResult:
    result = build_unit(config, output, unit)
    work = result.translation
    get_run_logger().info(f"shard {unit.index} {unit.lang}: {result.rows} rows, "
                          f"{result.stats.quality_pass} pass quality, "
                          f"{work.translated if work else 0} segments translated")
    return result


def _task_runner(dask_address: str | None, dask: dict[str, Any] | None, dask_workers: int):
    if not dask_address and not dask and not dask_workers:
        return None
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    # One single-threaded worker process per core is what suits CTranslate2 on small machines.
    cluster = dict(dask or {"n_workers": dask_workers, "threads_per_worker": 1})
    return DaskTaskRunner(cluster_kwargs=cluster)


def _build_units(job: BuildJob, runner: Any) -> None:
    """Run the job's units as tasks (on ``runner`` when given) and record each result as it lands."""
    if runner is None:  # Prefect's thread pool: the tasks run in this flow run
        _run_units(job)
        return

    # Dask: a subflow, because a flow's task runner is fixed when it starts and this one is chosen
    # by the parameters. It closes over the job so the job (and its manifest) never becomes a
    # flow-run parameter sent to the API. (Only here: every flow run ends up to a second late,
    # when Prefect joins its heartbeat thread, which sleeps in whole seconds.)
    @flow(name="build-corpus-shards")
    def build_shards() -> int:
        return _run_units(job)

    build_shards.with_options(task_runner=runner)()


def _run_units(job: BuildJob) -> int:
    """Submit every unit, record each result as it lands, and move the progress artifact."""
    logger = get_run_logger()
    output = str(job.output)
    futures = [build_shard.submit(job.config, output, unit) for unit in job.units]
    failed = []
    total, already = job.total_units, job.total_units - len(job.units)
    progress = create_progress_artifact(100.0 * already / total, key="corpus-progress",
                                        description=f"{job.config.name}: shards written of {total}")
    for done, future in enumerate(as_completed(futures), start=1):
        result = future.result(raise_on_failure=False)
        if isinstance(result, BaseException):
            failed.append(result)
            continue
        job.record(result)
        # The description carries each language's shards, rows, segments and ETA beside the percentage.
        update_progress_artifact(progress, 100.0 * (already + done - len(failed)) / total,
                                 description=f"{job.config.name}: {job.progress.summary()}")
        logger.info(f"[{done}/{len(futures)}] wrote {result.shard.path} ({result.rows} rows)")
        if job.progress.due(PROGRESS_EVERY):
            logger.info(job.progress.line())
            create_markdown_artifact(job.progress.markdown(), key="corpus-progress-languages",
                                     description=f"{job.config.name}: shards, rows, segments and ETA per language")
    if failed:  # the units that did succeed are recorded; a rerun builds only the rest
        raise RuntimeError(f"{len(failed)} of {len(futures)} shards failed; first: {failed[0]!r}")
    return len(futures)


@flow(name="build-corpus", log_prints=True)
def build_corpus(
    output: str = "out/default-corpus",
    config: str | dict[str, Any] | None = None,
    overwrite: bool = False,
    cards_dir: str | None = None,
    dask_address: str | None = None,
    dask_workers: int = 0,
    dask: dict[str, Any] | None = None,
    refresh: bool = False,
    allow_non_empty: bool = False,
    wait: float = 0.0,
) -> dict[str, Any]:
    """Build (or resume) a corpus into ``output`` from a YAML config path, a config mapping, or the default.

    ``config`` is handed to the build as is (see ``polyqa.corpus.config.BuildConfig``).
    ``overwrite`` deletes the corpus polyqa built in ``output`` first (only its own files).
    ``allow_non_empty`` builds into a folder polyqa did not create, beside its files.

    One writer per output: the build holds the output's lock from start to end (released on
    failure too). Another build of the same output, by a flow or the ``polyqa`` command,
    here or on another machine, makes this run fail at once naming the holder, or wait up
    to ``wait`` seconds for it.

    ``refresh`` (scheduled runs): a corpus of an older configuration in ``output`` is rebuilt;
    the translation cache makes every segment translated before free, so only new sources or
    languages cost translation. An unchanged, complete corpus is left alone.

    Tasks run on Prefect's thread pool, or on Dask: ``dask_address`` of a running scheduler,
    ``dask_workers=N`` for a local cluster of N single-threaded workers, or ``dask`` with
    LocalCluster keyword arguments.

    When a corpus was (re)built, the flow emits the event ``polyqa.corpus.built`` (payload:
    ``corpus_dir``, ``name``, ``languages``, ``records``); deployment triggers in prefect.yaml
    start training and then evaluation from it.
    """
    logger = get_run_logger()
    with BuildJob.open(config, output, overwrite=overwrite, refresh=refresh, allow_non_empty=allow_non_empty,
                       wait=wait, cards_dir=cards_dir, log=logger.info) as job:
        if job.up_to_date:
            return _summary(job.finish(), output)
        if job.units:
            _build_units(job, _task_runner(dask_address, dask, dask_workers))
        manifest = job.finish()
    logger.info(f"{output}: complete; card written; build {manifest.build_seconds} s")
    _publish(manifest, output)
    summary = _summary(manifest, output)
    name = job.config.name
    emit_event(
        event="polyqa.corpus.built",
        resource={"prefect.resource.id": f"polyqa.corpus.{name}", "prefect.resource.name": name},
        payload={"corpus_dir": storage.display(output), "name": name,
                 "languages": summary["languages"], "records": summary["records"]},
    )
    return summary


def _publish(manifest: Manifest, output: str) -> None:
    """The run's page shows the corpus: its language and quality table, and the whole card."""
    from polyqa.corpus.cards import language_rows, render_card

    create_table_artifact(language_rows(manifest), key="corpus-languages",
                          description=f"{manifest.name}: rows, quality and answer projection per language")
    create_markdown_artifact(render_card(manifest, output), key="corpus-card",
                             description=f"the data card, also in {Path(output) / 'README.md'}")


def _summary(manifest: Manifest, output: str) -> dict[str, Any]:
    return {"output": output, "records": manifest.records, "languages": manifest.languages,
            "n_shards": manifest.n_shards, "rows": manifest.total_rows(),
            "quarantined": manifest.quarantine_rows(), "build_seconds": manifest.build_seconds}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the build-corpus flow locally.")
    parser.add_argument("--output", default="out/default-corpus")
    parser.add_argument("--config")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--allow-non-empty", action="store_true")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for another build of --output")
    parser.add_argument("--refresh", action="store_true")
    parser.add_argument("--cards-dir")
    parser.add_argument("--dask-workers", type=int, default=0, help="run tasks on a local Dask cluster")
    args = parser.parse_args()
    print(build_corpus(output=args.output, config=args.config, overwrite=args.overwrite, refresh=args.refresh,
                       allow_non_empty=args.allow_non_empty, wait=args.wait, cards_dir=args.cards_dir,
                       dask_workers=args.dask_workers))
