"""Prefect flow ``train-retriever``: one training run of ``polyqa.train.train_retriever``.

Thin on purpose: the flow loads the config and calls the plain function as a
task. Training checkpoints as it goes, so a retried task resumes from the
newest checkpoint instead of starting over.

    python flows/train_retriever.py configs/train-minilm-hybrid.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.events import emit_event
from prefect.runtime import task_run


@task(name="train", retries=1, retry_delay_seconds=5)
def train_task(config: dict[str, Any]) -> dict[str, Any]:
    from polyqa.train import TrainConfig, train_retriever

    settings = dict(config)
    if (task_run.run_count or 1) > 1:
        settings["resume"] = True  # a retry picks up from the newest checkpoint
    result = train_retriever(TrainConfig.from_dict(settings, source="train-retriever flow"))
    record = result.record
    return {
        "model_dir": str(result.model_dir),
        "run_record": str(result.run_record_path),
        "steps": record.get("steps"),
        "global_step": record.get("global_step"),
        "examples_per_second": record.get("examples_per_second"),
        "skipped_rows_total": record.get("skipped_rows_total"),
    }


@flow(name="train-retriever")
def train_retriever_flow(
    config_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    corpus: str | None = None,
    output_dir: str | None = None,
) -> dict[str, Any]:
    """Train from a YAML config (``config_path``) and/or settings given inline (``overrides``).

    ``corpus`` and ``output_dir`` override those two settings; a deployment triggered by a
    ``polyqa.corpus.built`` event fills them from the event. When training finishes the flow
    emits ``polyqa.retriever.trained`` (payload: ``model_dir``, ``corpus_dir``, ``run_record``),
    which triggers evaluation.
    """
    import yaml

    settings: dict[str, Any] = {}
    if config_path:
        with open(config_path, encoding="utf-8") as fh:
            settings.update(yaml.safe_load(fh) or {})
    settings.update(overrides or {})
    if corpus:
        settings["corpus"] = corpus
    if output_dir:
        settings["output_dir"] = output_dir
    summary = train_task(settings)
    get_run_logger().info("trained %s steps; model in %s", summary["steps"], summary["model_dir"])
    emit_event(
        event="polyqa.retriever.trained",
        resource={"prefect.resource.id": f"polyqa.retriever.{Path(summary['model_dir']).parent.name}"},
        payload={"model_dir": str(Path(summary["model_dir"]).resolve()),
                 "corpus_dir": str(Path(settings["corpus"]).resolve()),
                 "run_record": str(Path(summary["run_record"]).resolve())},
    )
    return summary


if __name__ == "__main__":
    print(train_retriever_flow(config_path=sys.argv[1] if len(sys.argv) > 1 else None))
