"""Prefect flow ``build-corpus``: the corpus build with one task per (shard, language).

The flow only orchestrates; every step is a plain function in
:mod:`polyqa.corpus.build`. Tasks: ``ingest`` (sources -> staged English
shards + quarantine), then per shard and language ``translate_shard`` (rows,
translated, projected and scored) and ``write_shard`` (atomic file write). The
manifest is updated after each written shard, so a crashed or cancelled run
resumes: shards whose checksum verifies are skipped.

Tasks run on Prefect's thread pool by default, or on Dask through
prefect-dask: ``dask_address="tcp://..."`` for an existing cluster,
``dask_workers=2`` for a LocalCluster of single-threaded workers, or
``dask={"n_workers": 2, "processes": False}`` for any LocalCluster arguments.

    python flows/build_corpus.py --output out/default-corpus   # a local run
    prefect deployment run build-corpus/default --watch         # via a server (see prefect.yaml)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.futures import as_completed

from polyqa.corpus import build as B
from polyqa.corpus.manifest import Manifest


@task(name="ingest", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def ingest(config: dict[str, Any], output: str) -> dict[str, Any]:
    logger = get_run_logger()
    return B.ingest(B.load_config(config), output, log=logger.info)


@task(name="translate_shard", task_run_name="translate-shard-{index}-{lang}", retries=2, retry_delay_seconds=5,
      cache_policy=NO_CACHE)
def translate_shard(config: dict[str, Any], output: str, index: int, lang: str):
    table, extras = B.language_shard_rows(output, B.load_config(config), index, lang)
    get_run_logger().info(f"shard {index} {lang}: {table.num_rows} rows, "
                          f"{extras['stats']['quality_pass']} pass quality, "
                          f"{extras['translation'].get('translated', 0)} segments translated")
    return table, extras


@task(name="write_shard", task_run_name="write-shard-{index}-{lang}", retries=2, retry_delay_seconds=2,
      cache_policy=NO_CACHE)
def write_shard(config: dict[str, Any], output: str, index: int, lang: str, n_shards: int, built) -> dict[str, Any]:
    table, extras = built
    return B.write_language_shard(output, B.load_config(config), index, lang, n_shards, table, extras)


@flow(name="build-corpus-shards")
def build_shards(config: dict[str, Any], output: str, todo: list[tuple[int, str]], n_shards: int) -> int:
    """Submit the pending (shard, language) pairs; record each shard in the manifest as it lands."""
    logger = get_run_logger()
    manifest = Manifest.load(output)
    written = []
    for index, lang in todo:
        built = translate_shard.submit(config, output, index, lang)
        written.append(write_shard.submit(config, output, index, lang, n_shards, built))
    done = 0
    for future in as_completed(written):
        entry = future.result()
        B.record_shard(manifest, output, entry)
        done += 1
        logger.info(f"[{done}/{len(todo)}] wrote {entry['path']} ({entry['rows']} rows)")
    return done


def _task_runner(dask_address: str | None, dask: dict[str, Any] | None, dask_workers: int):
    if not dask_address and not dask and not dask_workers:
        return None
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    # One single-threaded worker process per core is what suits CTranslate2 on small machines.
    cluster = dict(dask or {"n_workers": dask_workers, "threads_per_worker": 1})
    return DaskTaskRunner(cluster_kwargs=cluster)


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
) -> dict[str, Any]:
    """Build (or resume) a corpus into ``output`` from a YAML config path, a config dict, or the default.

    Tasks run on Prefect's thread pool, or on Dask: ``dask_address`` of a running scheduler,
    ``dask_workers=N`` for a local cluster of N single-threaded workers, or ``dask`` with
    LocalCluster keyword arguments.

    ``refresh`` (scheduled runs): a corpus of an older configuration in ``output`` is rebuilt;
    the translation cache makes every segment translated before free, so only new sources or
    languages cost translation. An unchanged, complete corpus is left alone.

    When a corpus was (re)built, the flow emits the event ``polyqa.corpus.built`` (payload:
    ``corpus_dir``, ``name``, ``languages``, ``records``); deployment triggers in prefect.yaml
    start training and then evaluation from it.
    """
    logger = get_run_logger()
    started = time.perf_counter()
    cfg = B.load_config(config)
    previous = Manifest.load(output) if refresh else None
    stale = previous is not None and previous.get("config_fingerprint") != cfg.fingerprint()
    if stale:
        logger.info(f"{output}: configuration changed; rebuilding (cached translations are reused)")
    B.prepare_output(output, overwrite or stale)
    if B.is_complete(output, cfg):
        logger.info(f"{output}: complete and verified; nothing to do")
        return _summary(Manifest.load(output), output)
    config_dict = cfg.as_dict()
    info = ingest(config_dict, output)
    manifest = B.open_manifest(output, cfg, info)
    todo = B.pending_shards(manifest, output, cfg.all_languages, info["n_shards"])
    total = info["n_shards"] * len(cfg.all_languages)
    logger.info(f"{info['records']} records, {info['n_shards']} shards x {len(cfg.all_languages)} languages: "
                f"{total - len(todo)} done, {len(todo)} to build")
    if todo:
        runner = _task_runner(dask_address, dask, dask_workers)
        shards_flow = build_shards.with_options(task_runner=runner) if runner is not None else build_shards
        shards_flow(config_dict, output, todo, info["n_shards"])
    manifest = B.finalize(Manifest.load(output), output, cfg, run_seconds=time.perf_counter() - started,
                          cards_dir=cards_dir)
    logger.info(f"{output}: complete; card written; build {manifest['build_seconds']} s")
    summary = _summary(manifest, output)
    emit_event(
        event="polyqa.corpus.built",
        resource={"prefect.resource.id": f"polyqa.corpus.{cfg.name}", "prefect.resource.name": cfg.name},
        payload={"corpus_dir": str(Path(output).resolve()), "name": cfg.name,
                 "languages": summary["languages"], "records": summary["records"]},
    )
    return summary


def _summary(manifest: Manifest, output: str) -> dict[str, Any]:
    return {"output": output, "records": manifest["records"], "languages": manifest["languages"],
            "n_shards": manifest["n_shards"], "rows": sum(e["rows"] for e in manifest.shards),
            "quarantined": manifest["quarantine"]["rows"], "build_seconds": manifest["build_seconds"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the build-corpus flow locally.")
    parser.add_argument("--output", default="out/default-corpus")
    parser.add_argument("--config")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--dask-workers", type=int, default=0, help="run tasks on a local Dask cluster")
    args = parser.parse_args()
    print(build_corpus(output=args.output, config=args.config, overwrite=args.overwrite,
                       dask_workers=args.dask_workers))
