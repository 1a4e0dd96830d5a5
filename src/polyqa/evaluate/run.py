"""One evaluation run: ``EvaluateJob`` opens it once (config checked, benchmark loaded), then encodes,
scores and reports; ``run_evaluation(config)`` does all of it in one call.

The CLI (``polyqa evaluate``), the Prefect flow (``flows/evaluate_retriever.py``)
and the study all run an :class:`~polyqa.evaluate.config.EvaluationConfig` through
this module; nothing here knows about the CLI or Prefect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from polyqa.encoders import resolve_encoder
from polyqa.evaluate.benchmark import Benchmark, load_benchmark
from polyqa.evaluate.config import EvaluationConfig
from polyqa.evaluate.report import write_outputs
from polyqa.evaluate.result import training_languages
from polyqa.splits import read_titles
from polyqa.evaluate.retrieval import Encoder, encode_benchmark, load_encoder, model_fingerprint, ranked_run

__all__ = ["EvaluateJob", "EvaluationConfig", "run_evaluation"]

log = logging.getLogger(__name__)


class EvaluateJob:
    """One evaluation, opened once: the config checked and the benchmark loaded.

    Then :meth:`encode` (resumable from the embedding cache), :meth:`score` and
    :meth:`report` (writes OUT.json / OUT.md / OUT.heatmap.png), or :meth:`run` for all three.
    ``config`` may also be a mapping of settings; ``model`` is an already loaded
    SentenceTransformer to use instead of loading ``config.model``.
    """

    def __init__(self, config: EvaluationConfig | Mapping[str, Any], model=None):
        if not isinstance(config, EvaluationConfig):
            config = EvaluationConfig.from_dict(config)
        config.check_paths()
        self.config = config
        self.kind = config.kind
        self.model = model
        started = time.perf_counter()
        titles = read_titles(config.articles_file) if config.articles_file else None
        self.n_titles = len(titles) if titles is not None else None
        exclude = read_titles(config.exclude_titles_file) if config.exclude_titles_file else None
        self.benchmark: Benchmark = load_benchmark(
            config.benchmark, config.data_dir, languages=config.languages, max_questions=config.max_questions,
            titles=titles, exclude_titles=exclude, split=config.split)
        self.load_seconds = time.perf_counter() - started
        self.embeddings: tuple[np.ndarray, np.ndarray] | None = None
        self.encoder: Encoder | None = None
        self.encode_stats: dict[str, Any] | None = None
        self.scores: Any = None
        self.result: dict[str, Any] | None = None
        log.info("loaded %s: %s", self.benchmark.name, self.benchmark.counts())

    @property
    def candidate_mode(self) -> str:
        """How candidates are encoded; "sentence" (as is) for benchmarks without paragraphs."""
        return self.config.candidates if self.kind.contexts else "sentence"

    def encode(self) -> dict[str, Any]:
        """Encode queries and candidates (each unique text once); returns the encoding stats."""
        c = self.config
        model = self.model if self.model is not None else load_encoder(c.model, c.device,
                                                                       trust_remote_code=c.trust_remote_code)
        encoder = Encoder(model, model_fingerprint(c.model), c.batch_size, c.embedding_cache)
        self.encoder = encoder
        self.embeddings = encode_benchmark(self.benchmark, encoder, self.candidate_mode,
                                           c.query_prompt, c.passage_prompt)
        self.encode_stats = asdict(encoder.stats)
        log.info("encoded %d texts (%d unique, %d from cache) in %.1f s", encoder.stats.texts,
                 encoder.stats.unique_texts, encoder.stats.from_cache, encoder.stats.seconds)
        return self.encode_stats

    def score(self) -> Any:
        """Per-query scores of every setting (encodes first if needed)."""
        if self.embeddings is None:
            self.encode()
        q_emb, c_emb = self.embeddings
        streamed = {}
        if self.benchmark.streamed:  # candidates read from disk in chunks while scoring (MIRACL's corpora)
            encoder, prompt = self.encoder, self.config.passage_prompt
            streamed["encode"] = lambda texts: encoder.encode(texts, prompt, keep=False)
        self.scores = self.kind.score(self.benchmark, q_emb, c_emb, chunk_size=self.config.chunk_size, **streamed)
        self.encode_stats = asdict(self.encoder.stats)  # streamed passages are encoded while scoring
        return self.scores

    def report(self) -> dict[str, Any]:
        """The result (scores first if needed), written to OUT.json, OUT.md and OUT.heatmap.png."""
        if self.scores is None:
            self.score()
        c, bench, stats = self.config, self.benchmark, self.encode_stats or {}
        body = self.kind.summarize(bench, self.scores, seen_languages=training_languages(c.model))
        with_context = self.candidate_mode == "sentence+context"
        result = {
            "benchmark": bench.name,
            "data_dir": bench.data_dir or c.data_dir,
            "model": c.model,
            "model_path": model_path(c.model),
            "trust_remote_code": c.trust_remote_code,
            "candidates": c.candidates if self.kind.contexts else "passage",
            "candidate_text": ("sentence + ' <sep> ' + paragraph, <sep> = the tokenizer's separator token"
                               if with_context else "as is"),
            "query_prompt": c.query_prompt,
            "passage_prompt": c.passage_prompt,
            "languages": bench.languages,
            "languages_requested": c.languages,
            "source_codes": bench.source_codes,
            "filters": {
                "max_questions": c.max_questions,
                "articles_file": c.articles_file,
                "articles": self.n_titles,
                "exclude_titles_file": c.exclude_titles_file,
                "split": bench.stats.get("split"),
            },
            "counts": bench.counts(),
            **body,
            "quarantine": bench.quarantine[:100],
            "timings": {
                "load_seconds": round(self.load_seconds, 3),
                "encode_seconds": round(stats.get("seconds", 0.0), 3),
                "scoring_seconds": round(self.scores.seconds, 3),
                "texts": stats.get("texts"),
                "unique_texts_encoded": stats.get("unique_texts"),
                "from_cache": stats.get("from_cache"),
            },
            "device": c.device,
            "batch_size": c.batch_size,
        }
        write_outputs(result, c.output)
        if c.run_file:
            log.info("wrote %d run lines to %s", self.write_run(c.run_file), c.run_file)
        self.result = result
        return result

    def per_query(self) -> dict[str, list] | None:
        """Each query's AP (monolingual and multilingual) as columns, for paired tests between models
        (see :func:`polyqa.evaluate.result.per_query_ap`); None for benchmarks not scored by AP (MIRACL)."""
        from polyqa.evaluate.result import per_query_ap
        from polyqa.evaluate.retrieval import LareqaScores

        if self.scores is None:
            self.score()
        return per_query_ap(self.benchmark, self.scores) if isinstance(self.scores, LareqaScores) else None

    def write_run(self, path, k: int = 100) -> int:
        """Write each query's ``k`` best candidates as a TREC run (``qid Q0 docid rank score polyqa``), the
        input of trec_eval, pytrec_eval and ranx; returns the lines written. Query ids are the benchmark's,
        prefixed with ``<lang>/`` when it asks the same question in several languages."""
        from polyqa import storage
        from polyqa.evaluate.retrieval import score_miracl

        if self.embeddings is None:
            self.encode()
        q_emb, c_emb = self.embeddings
        bench = self.benchmark
        run = ranked_run(bench, q_emb, c_emb, k, same_language=self.kind.score is score_miracl,
                         chunk_size=self.config.chunk_size)
        prefixed = len(bench.languages) > 1
        lines = []
        for query, ranked in run:
            qid = f"{query.language}/{query.qid}" if prefixed else query.qid
            lines += [f"{qid} Q0 {bench.candidates[i].key} {rank} {score:.9g} polyqa"
                      for rank, (i, score) in enumerate(ranked, 1)]
        storage.atomic_write_text(path, "".join(line + "\n" for line in lines))
        return len(lines)

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.encode()
        self.score()
        result = self.report()
        log.info("evaluation done in %.1f s -> %s", time.perf_counter() - started + self.load_seconds,
                 self.config.output)
        return result


def model_path(model: str) -> str:
    """Where the model is loaded from: an alias resolved, a local folder made absolute, a hub id as is."""
    from pathlib import Path

    resolved = resolve_encoder(model)
    return str(Path(resolved).resolve()) if Path(resolved).is_dir() else resolved


def run_evaluation(config: EvaluationConfig, model=None) -> dict[str, Any]:
    """Load, encode, score and write OUT.json / OUT.md / OUT.heatmap.png; returns the result."""
    return EvaluateJob(config, model).run()
