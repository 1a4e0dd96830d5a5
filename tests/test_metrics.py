"""Ranking metrics against scikit-learn and hand-worked cases; batched scorer against the per-query reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, ndcg_score

from polyqa.evaluate.benchmark import Benchmark, Candidate, Query
from polyqa.evaluate.metrics import (
    average_precision,
    ndcg_at_k,
    rank_distance,
    recall_at_k,
    relevant_ranks,
)
from polyqa.evaluate.retrieval import score_lareqa


@st.composite
def ranking_case(draw, max_items=40):
    n = draw(st.integers(2, max_items))
    # Few distinct score levels, so ties are common.
    levels = draw(st.integers(1, 6))
    scores = np.array(draw(st.lists(st.integers(0, levels), min_size=n, max_size=n)), dtype=np.float64)
    labels = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if not labels.any():
        labels[draw(st.integers(0, n - 1))] = True
    return scores, labels


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ranking_case())
def test_average_precision_equals_sklearn_with_ties(case):
    scores, labels = case
    assert average_precision(scores, np.nonzero(labels)[0]) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )


def test_average_precision_equals_sklearn_on_continuous_scores():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(5, 500))
        scores = rng.standard_normal(n).astype(np.float32)
        labels = rng.random(n) < rng.uniform(0.005, 0.3)
        labels[rng.integers(n)] = True
        assert average_precision(scores, np.nonzero(labels)[0]) == pytest.approx(
            average_precision_score(labels, scores), abs=1e-12
        )


def test_average_precision_known_values():
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    assert average_precision(scores, [0, 1]) == 1.0  # perfect ranking
    # Reversed: relevant at ranks 4 and 5 -> (1/4 + 2/5) / 2.
    assert average_precision(scores, [3, 4]) == pytest.approx((1 / 4 + 2 / 5) / 2)
    # One relevant at rank 3 -> 1/3.
    assert average_precision(scores, [2]) == pytest.approx(1 / 3)
    # All tied: one threshold with precision 2/5 for both relevant items.
    assert average_precision(np.zeros(5), [1, 3]) == pytest.approx(2 / 5)


def test_recall_at_k_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    relevant = [1, 4, 5]  # ranks 2, 5, 6
    assert recall_at_k(scores, relevant, 1) == 0.0
    assert recall_at_k(scores, relevant, 2) == pytest.approx(1 / 3)
    assert recall_at_k(scores, relevant, 5) == pytest.approx(2 / 3)
    assert recall_at_k(scores, relevant, 10) == 1.0
    # A tie at the cut-off counts pessimistically (as a threshold): items 0 and 1 both have rank 2.
    assert recall_at_k(np.array([1.0, 1.0, 0.0]), [1], 1) == 0.0


def test_rank_distance_by_hand():
    # Pool of 6 candidates: relevant items at positions 1, 3 and 6 of the ranking.
    scores = np.array([0.1, 0.9, 0.7, 0.95, 0.2, 0.8])
    ranking = np.argsort(-scores)  # 3, 1, 5, 2, 4, 0
    relevant = [1, 2, 0]  # ranks 2, 4, 6
    assert list(relevant_ranks(scores, relevant)) == [2, 4, 6]
    assert rank_distance(scores, relevant) == 6 - 2
    assert ranking[0] == 3
    with pytest.raises(ValueError):
        rank_distance(scores, [1])


@st.composite
def graded_case(draw):
    n = draw(st.integers(2, 60))
    scores = np.array(draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)), dtype=np.float64)
    gains = np.array(draw(st.lists(st.sampled_from([0, 0, 0, 1, 2, 3]), min_size=n, max_size=n)), dtype=np.float64)
    if not (gains > 0).any():
        gains[draw(st.integers(0, n - 1))] = 1.0
    k = draw(st.sampled_from([1, 3, 5, 10, 100]))
    return scores, gains, k


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graded_case())
def test_ndcg_equals_sklearn_with_ties(case):
    scores, gains, k = case
    assert ndcg_at_k(scores, gains, k) == pytest.approx(ndcg_score(gains[None], scores[None], k=k), abs=1e-12)


def test_ndcg_equals_sklearn_on_continuous_scores():
    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(11, 300))
        scores = rng.standard_normal(n)
        gains = (rng.random(n) < 0.05).astype(float) * rng.integers(1, 4, n)
        gains[rng.integers(n)] = 1.0
        assert ndcg_at_k(scores, gains, 10) == pytest.approx(ndcg_score(gains[None], scores[None], k=10), abs=1e-12)


def _synthetic_benchmark(rng, n_lang=4, n_qids=30, per_lang_cands=(50, 70, 40, 55), drop=0.25):
    """Queries with one relevant candidate per language holding their id; some ids missing in some languages."""
    lang_names = [f"l{i}" for i in range(n_lang)]
    candidates, offsets = [], []
    for li, n in enumerate(per_lang_cands[:n_lang]):
        offsets.append(len(candidates))
        candidates += [Candidate(lang_names[li], f"c{li}-{j}", "", "", f"{li}/{j}") for j in range(n)]
    present = rng.random((n_qids, n_lang)) > drop
    present[np.arange(n_qids), rng.integers(0, n_lang, n_qids)] = True
    answer = [[offsets[li] + int(rng.integers(per_lang_cands[li])) for li in range(n_lang)] for _ in range(n_qids)]
    queries = []
    for li in range(n_lang):
        for q in range(n_qids):
            if present[q, li]:
                rel = tuple(answer[q][lj] for lj in range(n_lang) if present[q, lj])
                queries.append(Query(f"q{q}", lang_names[li], f"q{q}-{li}", "", rel))
    return Benchmark("synthetic", lang_names, queries, candidates)


@pytest.mark.parametrize("quantize", [False, True])
def test_batched_scorer_matches_per_query_reference(quantize):
    rng = np.random.default_rng(11)
    bench = _synthetic_benchmark(rng)
    dim = 16
    q_emb = rng.standard_normal((len(bench.queries), dim)).astype(np.float32)
    c_emb = rng.standard_normal((len(bench.candidates), dim)).astype(np.float32)
    if quantize:  # coarse embeddings give many exactly tied scores
        q_emb = np.sign(q_emb)
        c_emb = np.sign(c_emb)
    got = score_lareqa(bench, q_emb, c_emb, ks=(1, 10), chunk_size=17)
    scores_all = q_emb @ c_emb.T
    c_lang = np.array([int(c.language[1:]) for c in bench.candidates])
    checked_pairs = 0
    for i, q in enumerate(bench.queries):
        row = scores_all[i]
        rel = np.array(q.relevant)
        assert got.ap_pool[i] == pytest.approx(average_precision_score(np.isin(np.arange(len(row)), rel), row))
        assert got.recall_pool[10][i] == pytest.approx(recall_at_k(row, rel, 10))
        if len(rel) >= 2:
            assert got.rank_distance[i] == rank_distance(row, rel)
        else:
            assert np.isnan(got.rank_distance[i])
        for li in range(len(bench.languages)):
            block = np.nonzero(c_lang == li)[0]
            rel_here = np.nonzero(np.isin(block, rel))[0]
            if rel_here.size == 0:
                assert np.isnan(got.ap_lang[i, li])
                continue
            labels = np.zeros(block.size, dtype=bool)
            labels[rel_here] = True
            assert got.ap_lang[i, li] == pytest.approx(average_precision_score(labels, row[block]))
            assert got.recall_lang[1][i, li] == pytest.approx(recall_at_k(row[block], rel_here, 1))
            checked_pairs += 1
    assert checked_pairs > len(bench.queries)
