"""One evaluation run: load a benchmark, encode it once, score every setting, write the report.

The CLI (``polyqa evaluate``) and the Prefect flow (``flows/evaluate_retriever.py``)
both call these functions; nothing here knows about either.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from polyqa.evaluate.benchmarks import Benchmark, load_benchmark, read_titles
from polyqa.evaluate.report import summarize_lareqa, summarize_miracl, training_languages, write_outputs
from polyqa.evaluate.retrieval import (
    Encoder,
    encode_benchmark,
    load_encoder,
    model_fingerprint,
    resolve_model,
    score_lareqa,
    score_miracl,
)

log = logging.getLogger(__name__)


@dataclass
class EvaluationConfig:
    model: str
    benchmark: str  # xquad-r | mlqa-r | miracl
    data_dir: str | None
    output: str
    candidates: str = "sentence+context"
    languages: list[str] | None = None
    batch_size: int = 64
    device: str = "cpu"
    max_questions: int | None = None
    articles_file: str | None = None  # keep only these article titles (held-out split)
    exclude_titles_file: str | None = None  # drop these article titles
    query_prompt: str = ""
    passage_prompt: str = ""
    split: str = "dev"  # MIRACL split
    cache_dir: str | None = None  # embedding blocks, for resuming an interrupted run
    chunk_size: int = 1024  # queries scored per matrix product
    extra: dict = field(default_factory=dict)


def load(config: EvaluationConfig) -> Benchmark:
    titles = read_titles(config.articles_file) if config.articles_file else None
    exclude = read_titles(config.exclude_titles_file) if config.exclude_titles_file else None
    return load_benchmark(config.benchmark, config.data_dir, config.languages, titles, exclude,
                          config.max_questions, config.split)


def encode(config: EvaluationConfig, benchmark: Benchmark, model=None) -> tuple[np.ndarray, np.ndarray, dict]:
    model = model if model is not None else load_encoder(config.model, config.device)
    encoder = Encoder(model, model_fingerprint(config.model), config.batch_size, config.cache_dir)
    q_emb, c_emb = encode_benchmark(benchmark, encoder, config.candidates, config.query_prompt, config.passage_prompt)
    return q_emb, c_emb, asdict(encoder.stats)


def score_and_report(config: EvaluationConfig, benchmark: Benchmark, q_emb: np.ndarray, c_emb: np.ndarray,
                     encode_stats: dict) -> dict:
    seen = training_languages(config.model)
    if benchmark.name == "miracl":
        scores = score_miracl(benchmark, q_emb, c_emb)
        body = summarize_miracl(benchmark, scores, seen)
    else:
        scores = score_lareqa(benchmark, q_emb, c_emb, chunk_size=config.chunk_size)
        body = summarize_lareqa(benchmark, scores, seen_languages=seen)
    result = {
        "benchmark": benchmark.name,
        "model": config.model,
        "model_path": resolve_model(config.model),
        "candidates": config.candidates if benchmark.name != "miracl" else "passage",
        "candidate_text": (
            "sentence + ' <sep> ' + paragraph, <sep> = the tokenizer's separator token"
            if config.candidates == "sentence+context" and benchmark.name != "miracl" else "as is"
        ),
        "query_prompt": config.query_prompt,
        "passage_prompt": config.passage_prompt,
        "languages": benchmark.languages,
        "source_codes": benchmark.source_codes,
        "filters": {
            "max_questions": config.max_questions,
            "articles_file": config.articles_file,
            "exclude_titles_file": config.exclude_titles_file,
            "split": config.split if benchmark.name == "miracl" else None,
        },
        "counts": benchmark.counts(),
        **body,
        "quarantine": benchmark.quarantine[:100],
        "timings": {
            "encode_seconds": round(encode_stats.get("seconds", 0.0), 3),
            "scoring_seconds": round(scores.seconds, 3),
            "texts": encode_stats.get("texts"),
            "unique_texts_encoded": encode_stats.get("unique_texts"),
            "from_cache": encode_stats.get("from_cache"),
        },
        "device": config.device,
        "batch_size": config.batch_size,
    }
    write_outputs(result, config.output)
    return result


def run_evaluation(config: EvaluationConfig, model=None) -> dict:
    """Load, encode, score and write OUT.json / OUT.md / OUT.heatmap.png; returns the result."""
    start = time.perf_counter()
    benchmark = load(config)
    log.info("loaded %s: %s", benchmark.name, benchmark.counts())
    q_emb, c_emb, stats = encode(config, benchmark, model)
    log.info("encoded %d texts (%d unique) in %.1f s", stats["texts"], stats["unique_texts"], stats["seconds"])
    result = score_and_report(config, benchmark, q_emb, c_emb, stats)
    log.info("evaluation done in %.1f s -> %s", time.perf_counter() - start, Path(config.output))
    return result
