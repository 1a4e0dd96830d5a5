"""Exports of a polyqa corpus to the formats other trainers and evaluators read, and mined hard negatives.

``polyqa export CORPUS --format F --output DIR`` (:class:`ExportJob`) writes one of

- ``sentence-transformers``: a Hugging Face dataset (Parquet) with ``anchor``, ``positive``,
  ``negative_1`` ... ``negative_k``, one config per (query language, positive language) pair;
- ``flagembedding``: JSONL ``{"query", "pos", "neg"[, "pos_scores", "neg_scores"][, "prompt"]}``;
- ``tevatron``: train JSONL ``{"query_id", "query", "positive_passages", "negative_passages"}`` and a
  corpus JSONL ``{"docid", "title", "text"}``;
- ``beir``: per language ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv``, and a
  cross-lingual variant (queries in one language, the corpus in all of them);

with ``export.json`` (what was exported from which corpus, counts, rows left out and why, the
miner) and a card. ``polyqa mine-negatives`` (:mod:`polyqa.export.mining`) mines hard negatives per
language with any sentence-transformers encoder and stores them by id, so one negative can be
given in any language of the corpus.
"""

from polyqa.export.config import EXPORT_FORMATS, ExportConfig
from polyqa.export.job import ExportJob, ExportResult
from polyqa.export.mining import MinerSettings, MinedNegatives, mine_negatives

__all__ = ["EXPORT_FORMATS", "ExportConfig", "ExportJob", "ExportResult", "MinerSettings", "MinedNegatives",
           "mine_negatives"]
