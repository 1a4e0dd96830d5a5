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
    average_precision_at_k,
    paired_bootstrap,
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
        assert got.ap20_pool[i] == pytest.approx(average_precision_at_k(row, rel, 20))
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
            assert got.ap20_lang[i, li] == pytest.approx(average_precision_at_k(row[block], rel_here, 20))
            assert got.recall_lang[1][i, li] == pytest.approx(recall_at_k(row[block], rel_here, 1))
            checked_pairs += 1
    assert checked_pairs > len(bench.queries)


def _xtreme_r_ap_at_k(targets, ranked, k):
    """XTREME-R's definition (google-research/xtreme, third_party/utils_lareqa.py), restated."""
    score = hits = 0.0
    for i, pred in enumerate(ranked[:k]):
        if pred in targets:
            hits += 1.0
            score += hits / (i + 1.0)
    return score / min(len(targets), k)


def test_ap_at_20_by_hand():
    scores = np.arange(30, 0, -1, dtype=np.float64)  # item i is ranked i + 1
    # Relevant at ranks 1, 3 and 21: the one below rank 20 adds nothing, the divisor stays 3.
    assert average_precision_at_k(scores, [0, 2, 20], 20) == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert average_precision(scores, [0, 2, 20]) == pytest.approx((1 / 1 + 2 / 3 + 3 / 21) / 3)
    # 22 relevant at ranks 1..22: the divisor is min(22, 20) = 20, every counted precision is 1.
    assert average_precision_at_k(scores, list(range(22)), 20) == 1.0
    # Nothing within the top 20: 0.
    assert average_precision_at_k(scores, [25], 20) == 0.0
    # Ties at the cut-off: pessimistic ranks, as for AP (two items tied at ranks 20-21 both rank 21).
    tied = scores.copy()
    tied[20] = tied[19]
    assert average_precision_at_k(tied, [19], 20) == 0.0


def test_ap_at_k_equals_the_xtreme_r_definition_on_distinct_scores():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(5, 200))
        scores = rng.standard_normal(n)
        relevant = np.unique(rng.integers(0, n, size=int(rng.integers(1, 15))))
        ranked = list(np.argsort(-scores))
        for k in (1, 5, 20):
            assert average_precision_at_k(scores, relevant, k) == pytest.approx(
                _xtreme_r_ap_at_k(set(relevant.tolist()), ranked, k), abs=1e-12)


def test_paired_bootstrap_excludes_zero_when_one_side_is_clearly_better():
    rng = np.random.default_rng(0)
    b = rng.uniform(0, 1, 400)
    a = np.clip(b + 0.1 + rng.normal(0, 0.05, 400), 0, 1.2)
    result = paired_bootstrap(a, b, resamples=1000, seed=1)
    assert result["difference"] == pytest.approx(np.mean(a - b))
    assert 0 < result["low"] < result["difference"] < result["high"]
    assert not result["crosses_zero"] and result["queries"] == 400
    swapped = paired_bootstrap(b, a, resamples=1000, seed=1)
    assert swapped["high"] < 0 and not swapped["crosses_zero"]


def test_paired_bootstrap_includes_zero_for_identical_systems_with_noise():
    rng = np.random.default_rng(5)
    b = rng.uniform(0, 1, 300)
    a = b + rng.normal(0, 0.05, 300)
    result = paired_bootstrap(a, b, resamples=1000, seed=2)
    assert result["low"] < 0 < result["high"] and result["crosses_zero"]
    assert result == paired_bootstrap(a, b, resamples=1000, seed=2)  # seeded: the same interval again


def test_paired_bootstrap_with_groups_is_the_macro_mean_and_drops_nan_pairs():
    # Language x: a beats b by 0.3 on 10 queries; language y: a loses by 0.1 on 90 queries.
    a = np.r_[np.full(10, 0.8), np.full(90, 0.4), [np.nan]]
    b = np.r_[np.full(10, 0.5), np.full(90, 0.5), [0.2]]
    groups = np.r_[["x"] * 10, ["y"] * 90, ["x"]]
    macro = paired_bootstrap(a, b, groups, resamples=200)
    assert macro["difference"] == pytest.approx((0.3 - 0.1) / 2) and macro["queries"] == 100
    # Constant differences within each language: every resample gives the same macro mean.
    assert macro["low"] == pytest.approx(0.1) and macro["high"] == pytest.approx(0.1)
    micro = paired_bootstrap(a, b, resamples=200)
    assert micro["difference"] == pytest.approx((10 * 0.3 - 90 * 0.1) / 100)
    with pytest.raises(ValueError, match="no query"):
        paired_bootstrap(np.array([np.nan]), np.array([1.0]))


def test_results_and_markdown_report_map_at_20_beside_map_and_per_query_ap():
    from polyqa.evaluate.report import render_markdown
    from polyqa.evaluate.result import per_query_ap, summarize_lareqa

    rng = np.random.default_rng(4)
    bench = _synthetic_benchmark(rng)
    q_emb = rng.standard_normal((len(bench.queries), 8)).astype(np.float32)
    c_emb = rng.standard_normal((len(bench.candidates), 8)).astype(np.float32)
    scores = score_lareqa(bench, q_emb, c_emb)
    body = summarize_lareqa(bench, scores)
    q_lang = np.array([q.language for q in bench.queries])
    multi20 = [np.nanmean(scores.ap20_pool[q_lang == lang]) for lang in bench.languages]
    assert body["settings"]["multilingual"]["mAP@20"] == pytest.approx(np.mean(multi20))
    for setting in ("monolingual", "cross-lingual", "multilingual"):
        block = body["settings"][setting]
        assert 0 < block["mAP@20"] <= block["mAP"]  # AP@20 drops the relevant items ranked below 20
    md = render_markdown({"benchmark": "synthetic", "model": "m", "languages": bench.languages, "counts": {},
                          "rank_distance": body["rank_distance"], "settings": body["settings"]})
    assert "| setting | mAP | mAP@20 | R@1 | R@10 |" in md
    cols = per_query_ap(bench, scores)
    multi = [(lang, qid, ap) for s, lang, qid, ap in zip(cols["setting"], cols["language"], cols["qid"], cols["ap"])
             if s == "multilingual"]
    assert [(q.language, q.qid) for q in bench.queries] == [(lang, qid) for lang, qid, _ in multi]
    assert [ap for *_, ap in multi] == pytest.approx(scores.ap_pool.tolist())
    mono = [ap for s, ap in zip(cols["setting"], cols["ap"]) if s == "monolingual"]
    own = [scores.ap_lang[i, bench.languages.index(q.language)] for i, q in enumerate(bench.queries)]
    assert mono == pytest.approx(own)  # every query has its answer in its own language here
