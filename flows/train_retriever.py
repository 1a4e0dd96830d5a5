"""Prefect flow ``train-retriever``: one training run of ``polyqa.train``.

The settings are loaded by ``TrainConfig.load``, the same loader ``polyqa
train`` uses (YAML file, then overrides; paths expanded; validated once), so
every TrainConfig setting works here without edits to the flow. The flow adds
only Prefect concerns: the training runs as a task that is retried once, and
a retry resumes from the newest checkpoint instead of starting over; when
training finishes the flow emits ``polyqa.retriever.trained``.

    python flows/train_retriever.py configs/train-minilm-hybrid.yaml
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.events import emit_event
from prefect.runtime import task_run

from polyqa import storage

if TYPE_CHECKING:
    from polyqa.train import TrainConfig


def flow_config(
    config_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    corpus: str | None = None,
    output_dir: str | None = None,
) -> TrainConfig:
    """The flow's parameters as a TrainConfig: the YAML file, then ``overrides``, then ``corpus``/``output_dir``."""
    from polyqa.train import TrainConfig

    return TrainConfig.load(config_path, overrides, source=config_path or "train-retriever flow",
                            corpus=corpus, output_dir=output_dir)


@task(name="train", retries=1, retry_delay_seconds=5)
def train_task(config: TrainConfig) -> dict[str, Any]:
    from polyqa.train import TrainJob
    from polyqa.train.record import summary_markdown

    if (task_run.run_count or 1) > 1:
        config = dataclasses.replace(config, resume=True)  # a retry picks up from the newest checkpoint
    result = TrainJob(config).run()
    record = result.record
    return {
        "model_dir": str(result.model_dir),
        "run_record": str(result.run_record_path),
        "steps": record.get("steps"),
        "global_step": record.get("global_step"),
        "examples_per_second": record.get("examples_per_second"),
        "skipped_rows_total": record.get("skipped_rows_total"),
        # The articles training left out (exclude_titles*, heldout_fraction): evaluate on these.
        "heldout_articles_file": (record.get("training_info") or {}).get("heldout_articles_file"),
        "summary_markdown": summary_markdown(record),
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
    ``polyqa.corpus.built`` event fills them from the event. As on the command line, a setting
    given as None keeps the config file's value. When training finishes the flow emits
    ``polyqa.retriever.trained`` (payload: ``model_dir``, ``corpus_dir``, ``run_record``, and
    ``heldout_articles_file`` when training left articles out, else null), which triggers evaluation:
    ``--benchmark polyqa-corpus --data-dir <corpus_dir> --articles-file <heldout_articles_file>``
    evaluates on the held-out articles of the training corpus.
    """
    config = flow_config(config_path, overrides, corpus, output_dir)
    from prefect.artifacts import create_markdown_artifact

    summary = train_task(config)
    get_run_logger().info("trained %s steps; model in %s", summary["steps"], summary["model_dir"])
    create_markdown_artifact(summary.pop("summary_markdown"), key="training-run",
                             description=f"run summary; the full record is {summary['run_record']}")
    emit_event(
        event="polyqa.retriever.trained",
        resource={"prefect.resource.id": f"polyqa.retriever.{Path(summary['model_dir']).parent.name}"},
        payload={"model_dir": str(Path(summary["model_dir"]).resolve()),
                 "corpus_dir": storage.display(config.corpus),
                 "run_record": str(Path(summary["run_record"]).resolve()),
                 "heldout_articles_file": summary["heldout_articles_file"]},
    )
    return summary


if __name__ == "__main__":
    print(train_retriever_flow(config_path=sys.argv[1] if len(sys.argv) > 1 else None))
