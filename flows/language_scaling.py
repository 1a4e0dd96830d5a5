"""Prefect flow ``language-scaling``: the language-scaling study, one task per cell.

The job is the study's own (:class:`polyqa.study.StudyJob`); this flow only runs its
preparation (split, corpus build, mined negatives, cell keys) as a task with retries and a
``study-prepared`` artifact, and each cell as a task with a retry. Cells are cached by the hash of
their configuration, so a rerun (or a retried task) skips finished cells and a
long study can be continued over several runs.

    python flows/language_scaling.py configs/cpu-scaling.yaml
"""

from __future__ import annotations

import sys
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE


@task(name="prepare", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def prepare_task(job) -> dict[str, Any]:
    """Split, corpus, negatives and keys: resumable, so a retry reuses what is complete."""
    from prefect.artifacts import create_markdown_artifact

    plan = job.prepare()
    create_markdown_artifact("\n".join(plan.summary_lines()) + "\n", key="study-prepared",
                             description=f"{job.config.name}: what the cells train and evaluate on")
    return {"cells": len(plan.cells), "pending": len(job.pending())}


@task(name="cell", task_run_name="cell-{label}", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def cell_task(job, index: int, label: str) -> dict[str, Any]:
    return job.run_cell(index)


@flow(name="language-scaling")
def language_scaling(config_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run or continue the study in ``config_path`` (YAML; ``overrides`` replace top-level keys)."""
    from polyqa.study import StudyConfig, StudyJob

    logger = get_run_logger()
    job = StudyJob(StudyConfig.from_yaml(config_path, **(overrides or {})))
    prepared = prepare_task(job)
    logger.info(f"{prepared['cells']} cells, {prepared['pending']} to run")
    rows = job.run(execute=lambda i: cell_task(job, i, job.cells[i].label), progress=logger.info)
    logger.info(f"{len(rows)} cells; results in {job.config.results_dir}")
    report = job.report_path()
    if report.is_file():
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(report.read_text("utf-8"), key="study-report",
                                 description=f"{job.config.name}: {len(rows)} cells ({report})")
    return {"cells": len(rows), "results_dir": job.config.results_dir}


if __name__ == "__main__":
    print(language_scaling(sys.argv[1]))
