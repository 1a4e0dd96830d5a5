"""The Prefect flow `build-corpus` on a real Dask LocalCluster (prefect-dask), then resumed."""

from __future__ import annotations

import asyncio
import json
import sys
from importlib import resources
from pathlib import Path

import pytest

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


async def _task_run_names(flow_run_name_prefix: str = "translate-shard") -> list[str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        runs = await client.read_task_runs(limit=200)
    return sorted(r.name for r in runs if r.name.startswith(flow_run_name_prefix))


@pytest.mark.slow
def test_flow_on_dask_local_cluster_and_resume(tmp_path, tiny_model, flow_module):
    from prefect.testing.utilities import prefect_test_harness

    from distributed import LocalCluster

    config = small_config(tmp_path, tiny_model)
    output = str(tmp_path / "corpus")
    with prefect_test_harness(server_startup_timeout=120), \
            LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        # an existing cluster by address (as with docker/compose.yaml's scheduler)
        summary = flow_module.build_corpus(output=output, config=config, dask_address=cluster.scheduler_address)
        names = asyncio.run(_task_run_names())
        assert summary["rows"] == 60 and summary["n_shards"] == 2
        assert validate_corpus(output).ok
        # one translate task per (shard, language), English included
        assert names == sorted(f"translate-shard-{k}-{lang}" for k in range(2)
                               for lang in ("eng_Latn", "deu_Latn", "fra_Latn"))
        before = Manifest.load(output)

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
