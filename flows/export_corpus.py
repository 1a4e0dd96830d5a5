"""Prefect flow ``export-corpus``: one ``polyqa export`` (:class:`polyqa.export.ExportJob`).

The flow adds only Prefect concerns: the export runs as a task that is retried once (a retry
starts over on polyqa's own files; an export that finished is found up to date), its card is
published as a markdown artifact, and ``polyqa.corpus.exported`` is emitted. A deployment in
prefect.yaml runs it on every corpus a build finishes, as training is triggered.

    python flows/export_corpus.py CORPUS beir OUT
"""

from __future__ import annotations

import sys
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.events import emit_event

from polyqa.export.config import ExportConfig


@task(name="export", retries=1, retry_delay_seconds=5)
def export_task(config: ExportConfig) -> dict[str, Any]:
    from polyqa.export import ExportJob

    logger = get_run_logger()
    result = ExportJob(config, progress=logger.info).run()
    return {"output": str(result.output), "up_to_date": result.up_to_date, "counts": result.manifest["counts"],
            "left_out": result.manifest["left_out"], "card": (result.output / "README.md").read_text("utf-8")}


@flow(name="export-corpus")
def export_corpus(corpus: str, format: str, output: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export ``corpus`` as ``format`` into ``output``; ``settings``: any other ExportConfig setting
    (languages, pairs, positive, heldout_fraction, mine_model, ...), checked as on the command line."""
    from prefect.artifacts import create_markdown_artifact

    config = ExportConfig.build(source="export-corpus flow", corpus=corpus, format=format, output=output,
                                **(settings or {}))
    summary = export_task(config)
    create_markdown_artifact(summary.pop("card"), key=f"export-{format}",
                             description=f"the card of the {format} export in {summary['output']}")
    emit_event(event="polyqa.corpus.exported",
               resource={"prefect.resource.id": f"polyqa.export.{format}"},
               payload={"corpus_dir": config.corpus, "export_dir": summary["output"], "format": format})
    return summary


if __name__ == "__main__":
    print(export_corpus(*sys.argv[1:4]))
