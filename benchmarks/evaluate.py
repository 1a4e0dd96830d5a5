"""Scoring speed of the batched LAReQA scorer at XQuAD-R's full size, side by side with scikit-learn.

Synthetic data with XQuAD-R's shape and relevance structure: 11 languages,
1190 question ids asked in every language (13,090 queries), about 1,183
candidate sentences per language (13,013 candidates), one relevant sentence
per language per question (11 relevant per query in the multilingual pool).
Embeddings (dim 384) share a vector per parallel sentence across languages,
plus a language vector and noise, so scores look like a real multilingual
encoder's rather than pure noise.

The batched scorer computes every setting at once (monolingual, all 110
cross-lingual pairs, multilingual, R@1/R@10, rank distance) for all queries.
The naive reference is what one would write first: per query,
``sklearn.metrics.average_precision_score`` on the multilingual pool and on
each language block (12 calls per query with 11 languages). It is timed on a random
sample of queries in the same rounds (ABBA, >= 5) and extrapolated per query; values are
checked equal on the sample every round. The figure ``speedup_vs_sklearn`` is the
median of the per-round ratios.

    python benchmarks/evaluate.py [--quick] [--sample 150]

The last line printed is the JSON of ``benchmarks/method.py``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from method import Measured, Run, alternate, ratio_figure, value_figure  # noqa: E402


def synthetic_xquad_r(n_lang=11, n_qids=1190, cands_per_lang=1183, dim=384, seed=0):
    from polyqa.evaluate.benchmark import Benchmark, Candidate, Query

    rng = np.random.default_rng(seed)
    langs = [f"l{i:02d}" for i in range(n_lang)]
    sentence_vec = rng.standard_normal((cands_per_lang, dim)).astype(np.float32)
    lang_vec = rng.standard_normal((n_lang, dim)).astype(np.float32) * 1.5
    answer_of = rng.integers(0, cands_per_lang, n_qids)  # parallel sentence holding each answer
    candidates, c_emb = [], []
    for li, lang in enumerate(langs):
        noise = rng.standard_normal((cands_per_lang, dim)).astype(np.float32) * 1.5
        c_emb.append(sentence_vec + lang_vec[li] + noise)
        candidates += [Candidate(lang, f"s{j}", "", "", f"{lang}/{j}") for j in range(cands_per_lang)]
    queries, q_emb = [], []
    for li, lang in enumerate(langs):
        noise = rng.standard_normal((n_qids, dim)).astype(np.float32) * 2.5
        q_emb.append(sentence_vec[answer_of] + lang_vec[li] + noise)
        for q in range(n_qids):
            rel = tuple(lj * cands_per_lang + int(answer_of[q]) for lj in range(n_lang))
            queries.append(Query(f"q{q}", lang, f"q{q}", "", rel))
    q_emb = np.concatenate(q_emb)
    c_emb = np.concatenate(c_emb)
    q_emb /= np.linalg.norm(q_emb, axis=1, keepdims=True)
    c_emb /= np.linalg.norm(c_emb, axis=1, keepdims=True)
    return Benchmark("synthetic-xquad-r", langs, queries, candidates), q_emb, c_emb


def naive_sklearn(bench, q_emb, c_emb, rows):
    """Per query: sklearn AP on the pool and on each language block (12 calls per query)."""
    from sklearn.metrics import average_precision_score

    c_lang = np.array([c.language for c in bench.candidates])
    blocks = [np.nonzero(c_lang == lang)[0] for lang in bench.languages]
    pool, per_lang = [], []
    for i in rows:
        scores = c_emb @ q_emb[i]
        labels = np.zeros(len(scores), dtype=bool)
        labels[list(bench.queries[i].relevant)] = True
        pool.append(average_precision_score(labels, scores))
        per_lang.append([average_precision_score(labels[b], scores[b]) for b in blocks])
    return np.array(pool), np.array(per_lang)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 languages instead of 11")
    parser.add_argument("--sample", type=int, default=150, help="queries timed with the naive reference")
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5, help="ABBA rounds (at least 5)")
    args = parser.parse_args()
    n_lang = 3 if args.quick else 11
    run = Run("evaluate", {"quick": args.quick, "languages": n_lang, "sample": args.sample,
                           "chunk_size": args.chunk_size, "rounds": args.rounds})

    import torch

    from polyqa.evaluate.result import summarize_lareqa
    from polyqa.evaluate.retrieval import score_lareqa

    bench, q_emb, c_emb = synthetic_xquad_r(n_lang=n_lang)
    rng = np.random.default_rng(1)
    rows = rng.choice(len(bench.queries), size=min(args.sample, len(bench.queries)), replace=False)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def batched():
        scores = score_lareqa(bench, q_emb, c_emb, chunk_size=args.chunk_size)
        return scores, summarize_lareqa(bench, scores)

    def naive():
        """sklearn on the sample, extrapolated to every query (it is linear in queries)."""
        t0 = time.perf_counter()
        out = naive_sklearn(bench, q_emb, c_emb, rows)
        return Measured((time.perf_counter() - t0) / len(rows) * len(bench.queries), out)

    differences: list[float] = []

    def check(out: dict) -> None:
        (scores, _), (pool, per_lang) = out["batched"], out["naive_sklearn"]
        differences.append(float(max(np.abs(pool - scores.ap_pool[rows]).max(),
                                     np.abs(per_lang - scores.ap_lang[rows]).max())))
        if differences[-1] > 1e-6:
            raise SystemExit(f"the batched scorer and sklearn disagree on the sample: {differences[-1]:.2e}")

    seconds = alternate("evaluate", [("naive_sklearn", naive), ("batched", batched)], rounds=args.rounds, check=check)
    run.add(ratio_figure("speedup_vs_sklearn", seconds, "naive_sklearn", "batched",
                         note=f"per-query sklearn (extrapolated from {len(rows)} queries) / the batched scorer, "
                              f"{len(bench.queries)} x {len(bench.candidates)}, all settings"))
    run.add(value_figure("batched_seconds", seconds["batched"], higher_is_better=False, unit="s"))
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scores = score_lareqa(bench, q_emb, c_emb, chunk_size=args.chunk_size)
    s = summarize_lareqa(bench, scores)["settings"]
    run.extra.update({
        "queries": len(bench.queries), "candidates": len(bench.candidates), "languages": n_lang,
        "torch_threads": torch.get_num_threads(), "naive_sample_queries": len(rows),
        "max_abs_ap_difference_on_sample": max(differences),
        "peak_rss_growth_mb": round(rss_after - rss_before, 1),
        "synthetic_mAP": {k: round(s[k]["mAP"], 4) for k in ("monolingual", "cross-lingual", "multilingual")},
    })
    run.finish()


if __name__ == "__main__":
    main()
