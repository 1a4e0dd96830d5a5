"""The Prefect flow `build-corpus` on a real Dask LocalCluster (prefect-dask), then resumed."""

from __future__ import annotations

import asyncio
import inspect
import json
import pickle
import sys
from dataclasses import fields
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest

from polyqa.corpus.config import BuildConfig
from polyqa.corpus.job import BuildJob, UnitResult
from polyqa.corpus.manifest import Manifest
from polyqa.corpus.validate import validate_corpus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def flow_module():
    sys.path.insert(0, str(REPO))
    try:
        from flows import build_corpus as module
    finally:
        sys.path.remove(str(REPO))
    return module


def small_config(tmp: Path, tiny_model) -> dict:
    data = json.loads(resources.files("polyqa.data").joinpath("default_sample.json").read_text("utf-8"))
    data["data"] = data["data"][:4]  # 20 QA pairs
    (tmp / "subset.json").write_text(json.dumps(data))
    return {
        "name": "flow-corpus", "sources": [{"kind": "squad_json", "path": str(tmp / "subset.json")}],
        "languages": ["de", "fr"], "shard_rows": 10, "model": "tiny",
        "tiny_model_dir": str(tiny_model.hf_dir.parent), "cache": str(tmp / "cache.sqlite"),
        "decoding": {"beam_size": 1, "max_length_ratio": 1.2, "max_length_extra": 4}, "card_dir": None,
    }


async def _task_run_names(since, flow_run_name_prefix: str = "build-shard") -> list[str]:
    """Names of the task runs started since ``since`` (the server is shared with other tests)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterStartTime

    async with get_client() as client:
        runs = await client.read_task_runs(
            task_run_filter=TaskRunFilter(start_time=TaskRunFilterStartTime(after_=since)), limit=200)
    return sorted(r.name for r in runs if r.name.startswith(flow_run_name_prefix))


@pytest.mark.slow
def test_flow_on_dask_local_cluster_and_resume(tmp_path, tiny_model, flow_module, monkeypatch, prefect_harness):
    from datetime import datetime, timezone

    from distributed import LocalCluster

    config = small_config(tmp_path, tiny_model)
    output = str(tmp_path / "corpus")
    recorded: list = []
    record = BuildJob.record
    monkeypatch.setattr(BuildJob, "record", lambda job, result: (recorded.append(result), record(job, result)))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        # an existing cluster by address (as with docker/compose.yaml's scheduler)
        since = datetime.now(timezone.utc)
        summary = flow_module.build_corpus(output=output, config=config, dask_address=cluster.scheduler_address)
        names = asyncio.run(_task_run_names(since))
        assert summary["rows"] == 60 and summary["n_shards"] == 2
        assert validate_corpus(output).ok
        # one task per (shard, language), English included; each builds and writes its shard
        assert names == sorted(f"build-shard-{k}-{lang}" for k in range(2)
                               for lang in ("eng_Latn", "deu_Latn", "fra_Latn"))
        # what comes back from the workers is the small typed record, never the rows
        assert len(recorded) == 6 and all(type(r) is UnitResult for r in recorded)
        assert not any(isinstance(value, pa.Table) for r in recorded for value in vars(r).values())
        assert all(len(pickle.dumps(r)) < 8_000 for r in recorded)
        before = Manifest.load(output)
        assert set(before.translation_per_language()) == {"deu_Latn", "fra_Latn"}
        # the run's page: progress at 100 %, the language table and the card, read back through the client
        from prefect_artifacts import latest_artifact

        progress = latest_artifact("corpus-progress")
        assert progress.data == 100.0
        assert "deu_Latn 2/2 shards, 20 rows" in progress.description and "ETA done" in progress.description
        table = latest_artifact("corpus-languages")
        rows = json.loads(table.data) if isinstance(table.data, str) else table.data
        assert [r["NLLB code"] for r in rows] == ["`eng_Latn`", "`deu_Latn`", "`fra_Latn`"]
        assert rows[1]["answer sentence"] == "100.0%"
        card = latest_artifact("corpus-card")
        assert card.type == "markdown" and card.data == (Path(output) / "README.md").read_text("utf-8")
        assert all(w["translated"] > 0 for w in before.translation_per_language().values())

        # a lost shard is rebuilt by the next run (on a LocalCluster the flow starts); the rest is kept
        lost = Path(output) / "lang=fra_Latn/part-00001-of-00002.arrow"
        lost.unlink()
        kept = Path(output) / "lang=deu_Latn/part-00000-of-00002.arrow"
        stamp = kept.stat().st_mtime_ns
        flow_module.build_corpus(output=output, config=config,
                                 dask={"n_workers": 1, "processes": False, "threads_per_worker": 1,
                                       "dashboard_address": ":0"})
        assert lost.exists() and kept.stat().st_mtime_ns == stamp
        assert validate_corpus(output).ok
        after = Manifest.load(output)
        assert after.shard("fra_Latn", 1)["sha256"] == before.shard("fra_Latn", 1)["sha256"]
        assert len(recorded) == 7  # only the lost shard was built again


def test_flow_parameters_are_not_build_config_fields(flow_module):
    """The flow takes a config as a whole (path, mapping or none) and leaves its parsing to BuildConfig."""
    parameters = set(inspect.signature(flow_module.build_corpus.fn).parameters)
    assert parameters == {"output", "config", "overwrite", "refresh", "cards_dir", "dask_address", "dask_workers",
                          "dask", "allow_non_empty", "wait"}
    assert not parameters & {f.name for f in fields(BuildConfig)}


def test_flow_reports_config_errors_from_build_config(tmp_path, flow_module, prefect_harness):
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['shard_size'\]"):
        flow_module.build_corpus(output=str(tmp_path / "corpus"), config={"shard_size": 5})
    (tmp_path / "bad.yaml").write_text("sources: [polyqa_sample]\nformat: csv\n")
    with pytest.raises(ValueError, match=r"format must be one of arrow, parquet, got 'csv': .*bad\.yaml"):
        flow_module.build_corpus(output=str(tmp_path / "corpus"), config=str(tmp_path / "bad.yaml"))
