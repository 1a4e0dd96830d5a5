"""Zero-shot retrieval evaluation: XQuAD-R and MLQA-R (LAReQA protocol) and MIRACL.

- ``benchmarks``: loaders (LAReQA JSON per language, MIRACL topics/qrels/corpus)
- ``metrics``: per-query AP, R@k, rank distance, nDCG@k (scikit-learn tie semantics)
- ``retrieval``: encoding each unique text once (resumable cache) and batched scoring
- ``report``: aggregation, seen/unseen split, OUT.json / OUT.md / OUT.heatmap.png
- ``run``: ``EvaluationConfig`` and ``run_evaluation`` used by the CLI and the flow
"""
