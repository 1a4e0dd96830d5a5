"""Prefect flow ``evaluate-retriever``: zero-shot evaluation of one model on one benchmark.

Thin on purpose: the flow's parameters are EvaluationConfig's fields (same names,
types and defaults, generated from the dataclass), and its tasks are the steps of
``polyqa.evaluate.run.EvaluateJob``. Encoding saves embedding blocks to the cache
(by default OUT.embcache, as on the command line), so a retried encode task
resumes instead of starting over.

    python flows/evaluate_retriever.py --model minilm --benchmark xquad-r \\
        --data-dir $POLYQA_DATA_DIR/xquad-r --output out/eval/minilm.json
"""

from __future__ import annotations

import sys
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from polyqa.evaluate.config import HELP, EvaluationConfig, config_signature

# The job holds the benchmark and its embeddings: passed by reference between tasks, never hashed.


@task(name="load-benchmark", cache_policy=NO_CACHE)
def open_task(config: EvaluationConfig):
    from polyqa.evaluate.run import EvaluateJob

    return EvaluateJob(config)


@task(name="encode", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def encode_task(job) -> dict[str, Any]:
    return job.encode()


@task(name="score-and-report", cache_policy=NO_CACHE)
def report_task(job) -> dict[str, Any]:
    job.score()
    return job.report()


def evaluate_retriever(**parameters: Any) -> dict[str, Any]:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from polyqa.evaluate.report import render_markdown, results_table, summary_line

    config = EvaluationConfig.from_dict(parameters, source="evaluate-retriever flow")
    job = open_task(config)
    encode_task(job)
    result = report_task(job)
    get_run_logger().info("%s -> %s", summary_line(result), config.output)
    # The run's page shows the results without opening files.
    create_table_artifact(results_table(result), key="evaluation-results",
                          description=f"{summary_line(result)} ({config.output})")
    create_markdown_artifact(render_markdown(result), key="evaluation-report",
                             description=f"the report written to {config.output}")
    return result


DESCRIPTION = "Zero-shot retrieval evaluation of one model on one benchmark."
# Prefect builds the parameter schema and validates runs from the signature (EvaluationConfig's
# fields) and takes parameter descriptions from the docstring's Args section.
evaluate_retriever.__signature__ = config_signature(return_annotation=dict[str, Any])
evaluate_retriever.__doc__ = f"{DESCRIPTION}\n\nArgs:\n" + "".join(f"    {k}: {v}\n" for k, v in HELP.items())
evaluate_retriever = flow(name="evaluate-retriever", description=DESCRIPTION)(evaluate_retriever)


if __name__ == "__main__":
    import argparse

    from polyqa.commands.evaluate import register, settings_from_args  # the CLI's parser and settings

    parser = argparse.ArgumentParser(prog="evaluate_retriever")
    register(parser.add_subparsers())
    evaluate_retriever(**settings_from_args(parser.parse_args(["evaluate", *sys.argv[1:]])))
