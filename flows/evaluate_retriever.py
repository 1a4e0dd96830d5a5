"""Prefect flow ``evaluate-retriever``: zero-shot evaluation of one model on one benchmark.

Thin on purpose: load, encode and score/report are the plain functions of
``polyqa.evaluate.run`` run as tasks. Encoding saves embedding blocks to a
cache folder, so a retried encode task resumes instead of starting over.

    python flows/evaluate_retriever.py --model minilm --benchmark xquad-r \
        --data-dir /work/shared/data/xquad-r --output out/eval/minilm.json
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task


@task(name="load-benchmark")
def load_task(config: dict[str, Any]):
    from polyqa.evaluate.run import EvaluationConfig, load

    return load(EvaluationConfig(**config))


@task(name="encode", retries=1, retry_delay_seconds=5)
def encode_task(config: dict[str, Any], benchmark):
    from polyqa.evaluate.run import EvaluationConfig, encode

    return encode(EvaluationConfig(**config), benchmark)


@task(name="score-and-report")
def score_task(config: dict[str, Any], benchmark, encoded) -> dict[str, Any]:
    from polyqa.evaluate.run import EvaluationConfig, score_and_report

    q_emb, c_emb, stats = encoded
    return score_and_report(EvaluationConfig(**config), benchmark, q_emb, c_emb, stats)


@flow(name="evaluate-retriever")
def evaluate_retriever(
    model: str,
    benchmark: str,
    output: str,
    data_dir: str | None = None,
    candidates: str = "sentence+context",
    languages: list[str] | None = None,
    max_questions: int | None = None,
    articles_file: str | None = None,
    exclude_titles_file: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    query_prompt: str = "",
    passage_prompt: str = "",
    cache_dir: str | None = None,
) -> dict[str, Any]:
    from polyqa.evaluate.run import EvaluationConfig

    config = asdict(EvaluationConfig(
        model=model, benchmark=benchmark, data_dir=data_dir, output=output, candidates=candidates,
        languages=languages, batch_size=batch_size, device=device, max_questions=max_questions,
        articles_file=articles_file, exclude_titles_file=exclude_titles_file, query_prompt=query_prompt,
        passage_prompt=passage_prompt, cache_dir=cache_dir,
    ))
    logger = get_run_logger()
    bench = load_task(config)
    encoded = encode_task(config, bench)
    result = score_task(config, bench, encoded)
    settings = result["settings"]
    if benchmark == "miracl":
        logger.info("MIRACL nDCG@10 %.4f", settings["monolingual"]["nDCG@10"])
    else:
        logger.info("mAP mono %.4f multi %.4f", settings["monolingual"]["mAP"], settings["multilingual"]["mAP"])
    return result


if __name__ == "__main__":
    from polyqa.commands.evaluate import register  # reuse the CLI's argument parser
    import argparse

    parser = argparse.ArgumentParser(prog="evaluate_retriever")
    sub = parser.add_subparsers()
    register(sub)
    args = parser.parse_args(["evaluate", *sys.argv[1:]])
    evaluate_retriever(
        model=args.model, benchmark=args.benchmark, output=args.output, data_dir=args.data_dir,
        candidates=args.candidates,
        languages=args.languages.split(",") if args.languages else None, max_questions=args.max_questions,
        articles_file=args.articles_file, exclude_titles_file=args.exclude_titles, batch_size=args.batch_size,
        device=args.device, query_prompt=args.query_prompt, passage_prompt=args.passage_prompt,
        cache_dir=None if args.no_cache else args.cache_dir,
    )
