"""Prefect flow ``language-scaling``: the language-scaling study, one task per cell.

Thin on purpose: :mod:`polyqa.study` prepares the corpus and the grid, runs a
cell, and writes the table, plots and report. Cells are cached by the hash of
their configuration, so a rerun (or a retried task) skips finished cells and
a long study can be continued over several runs.

    python flows/language_scaling.py configs/cpu-scaling.yaml
"""

from __future__ import annotations

import sys
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE


@task(name="prepare-study", cache_policy=NO_CACHE)
def prepare_task(config):
    from polyqa.study import prepare_study

    return prepare_study(config)


@task(name="cell", task_run_name="cell-{label}", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def cell_task(plan, index: int, label: str) -> dict[str, Any]:
    from polyqa.study import run_planned_cell

    return run_planned_cell(plan, index)


@task(name="write-results", cache_policy=NO_CACHE)
def results_task(config, rows: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> None:
    from polyqa.study import write_results

    write_results(config, rows, skipped)


@flow(name="language-scaling")
def language_scaling(config_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run or continue the study in ``config_path`` (YAML; ``overrides`` replace top-level keys)."""
    from polyqa.study import StudyConfig

    logger = get_run_logger()
    config = StudyConfig.from_yaml(config_path, **(overrides or {}))
    plan = prepare_task(config)
    rows = []
    # Cells run one after another: each one trains a model that uses every core.
    for i, cell in enumerate(plan.cells):
        cached = plan.finished(i)
        logger.info(f"[{i + 1}/{len(plan.cells)}] {cell.label}: {'cached' if cached else 'running'}")
        rows.append(cached or cell_task(plan, i, cell.label))
    results_task(config, rows, plan.skipped)
    logger.info(f"{len(rows)} cells; results in {config.results_dir}")
    return {"cells": len(rows), "results_dir": config.results_dir}


if __name__ == "__main__":
    print(language_scaling(sys.argv[1]))
