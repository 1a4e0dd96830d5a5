"""Zero-shot retrieval evaluation: XQuAD-R and MLQA-R (LAReQA protocol) and MIRACL.

- ``benchmark``: Benchmark / Query / Candidate and the benchmark registry (``register_benchmark``, ``load_benchmark``)
- ``lareqa``: XQuAD-R, MLQA-R and any ``<lang>.json`` SQuAD folder (``lareqa``) over :mod:`polyqa.sources.lareqa`
  (paragraphs without sentence breaks are segmented by polyqa); XQuAD-R from the hub
- ``corpus``: a polyqa corpus as a LAReQA-protocol benchmark (``polyqa-corpus``), e.g. on held-out articles
- ``miracl``: MIRACL topics, qrels and corpus
- ``metrics``: per-query AP, R@k, rank distance, nDCG@k (scikit-learn tie semantics)
- ``retrieval``: encoding each unique text once (resumable cache) and batched scoring
- ``report``: aggregation, seen/unseen split, OUT.json / OUT.md / OUT.heatmap.png
- ``run``: ``EvaluationConfig``, ``EvaluateJob`` and ``run_evaluation``, used by the CLI, the flow and the study
"""
