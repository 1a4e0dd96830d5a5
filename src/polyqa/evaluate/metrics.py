"""Ranking metrics for one query, defined from the ranks of the relevant items.

Ties follow scikit-learn: a tied group of scores is one threshold, so an item's
rank is the number of items scoring at least as high as it (the pessimistic
rank, the last position of its tie group). With that rank,

    AP = mean over relevant r of  #{relevant with score >= s_r} / #{all with score >= s_r}

which is exactly ``sklearn.metrics.average_precision_score``. The batched
scorer in ``retrieval.py`` uses the same formula on many queries at once; these
per-query functions are its reference and the building blocks for nDCG.

Definitions used across polyqa's evaluation:
- R@k (recall at k): the share of a query's relevant items whose rank is <= k.
- AP@20 (mAP@20, XTREME-R's variant of the LAReQA metric): the precisions
  at the ranks of the relevant items ranked within the top 20, summed and
  divided by min(#relevant, 20); relevant items below rank 20 add nothing.
- rank distance (language bias): largest minus smallest rank of a query's
  relevant items in the multilingual pool (defined for >= 2 relevant items).
- nDCG@k: scikit-learn's ``ndcg_score(k=k)`` (tied groups get their average
  gain), ideal DCG from the judged gains.
"""

from __future__ import annotations

import numpy as np


def relevant_ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Pessimistic 1-based rank of each relevant index: #{items with score >= its score}."""
    scores = np.asarray(scores)
    rel_scores = scores[np.asarray(relevant, dtype=np.int64)]
    # searchsorted on the sorted scores counts items >= each relevant score without a loop.
    ordered = np.sort(scores)
    return len(scores) - np.searchsorted(ordered, rel_scores, side="left")


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Average precision of one query; ``relevant`` holds the indices of relevant items."""
    precision, _ = _precision_at_relevant(scores, relevant)
    return float(np.mean(precision))


def _precision_at_relevant(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision at each relevant item's pessimistic rank, those ranks) of one query."""
    relevant = np.unique(np.asarray(relevant, dtype=np.int64))
    if relevant.size == 0:
        raise ValueError("average precision is undefined for a query with no relevant item")
    ranks = relevant_ranks(scores, relevant)
    rel_scores = np.asarray(scores)[relevant]
    rel_ge = (rel_scores[None, :] >= rel_scores[:, None]).sum(axis=1)
    return rel_ge / ranks, ranks


# XTREME-R reports LAReQA as mAP@20: google-research/xtreme, third_party/utils_lareqa.py,
# ``average_precision_at_k`` (called with k=20 by third_party/evaluate_retrieval.py).
MAP_CUTOFF = 20


def average_precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = MAP_CUTOFF) -> float:
    """AP@k of one query as XTREME-R defines it: sum of precision@rank over the relevant items ranked
    within k, divided by min(#relevant, k).

    XTREME-R ranks with ``argsort`` (ties in arbitrary order); here ranks are pessimistic, as for
    :func:`average_precision`, so the two agree whenever scores are distinct.
    """
    precision, ranks = _precision_at_relevant(scores, relevant)
    return float(np.sum(precision[ranks <= k]) / min(ranks.size, k))


def recall_at_k(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Share of relevant items ranked within the top k (pessimistic ranks)."""
    relevant = np.unique(np.asarray(relevant, dtype=np.int64))
    if relevant.size == 0:
        raise ValueError("recall is undefined for a query with no relevant item")
    return float(np.mean(relevant_ranks(scores, relevant) <= k))


def rank_distance(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Largest minus smallest rank of the relevant items (needs at least two)."""
    relevant = np.unique(np.asarray(relevant, dtype=np.int64))
    if relevant.size < 2:
        raise ValueError("rank distance needs at least two relevant items")
    ranks = relevant_ranks(scores, relevant)
    return float(ranks.max() - ranks.min())


def _discounts(n: int, k: int) -> np.ndarray:
    discount = 1.0 / np.log2(np.arange(n) + 2.0)
    discount[k:] = 0.0
    return discount


def dcg_at_k_tied(top_scores: np.ndarray, top_gains: np.ndarray, k: int) -> float:
    """Tie-averaged DCG@k of items given in any order.

    The items must include every item scoring at least the k-th highest score
    (so the tie group at the cut-off is complete); items ranked lower do not
    change the value.
    """
    top_scores = np.asarray(top_scores, dtype=np.float64)
    top_gains = np.asarray(top_gains, dtype=np.float64)
    if top_scores.size == 0:
        return 0.0
    discount_cumsum = np.cumsum(_discounts(top_scores.size, k))
    _, inverse, counts = np.unique(-top_scores, return_inverse=True, return_counts=True)
    mean_gain = np.zeros(len(counts))
    np.add.at(mean_gain, inverse, top_gains)
    mean_gain /= counts
    ends = np.cumsum(counts) - 1
    group_discount = np.diff(discount_cumsum[ends], prepend=0.0)
    return float((mean_gain * group_discount).sum())


def ideal_dcg_at_k(gains: np.ndarray, k: int) -> float:
    best = np.sort(np.asarray(gains, dtype=np.float64))[::-1][:k]
    return float((best * _discounts(best.size, k)).sum())


def ndcg_at_k(scores: np.ndarray, gains: np.ndarray, k: int = 10) -> float:
    """nDCG@k of one query over all items (``gains`` aligned with ``scores``), as sklearn's ndcg_score."""
    scores = np.asarray(scores, dtype=np.float64)
    gains = np.asarray(gains, dtype=np.float64)
    ideal = ideal_dcg_at_k(gains[gains > 0], k)
    if ideal == 0.0:
        return 0.0
    if scores.size > k:
        kth = np.partition(scores, scores.size - k)[scores.size - k]
        keep = scores >= kth
        return dcg_at_k_tied(scores[keep], gains[keep], k) / ideal
    return dcg_at_k_tied(scores, gains, k) / ideal


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Mean difference ``a - b`` over paired queries and its percentile bootstrap interval.

    ``a[i]`` and ``b[i]`` are two systems' scores (e.g. AP) on the same query ``i``; every
    resample draws queries with replacement and takes the same draw for both systems, so the
    interval reflects how much the difference depends on which queries were asked. With
    ``groups`` (e.g. query languages) queries are drawn within each group and the statistic is
    the plain mean of the group means: the macro average that the reported mAP is. Pairs with
    a NaN on either side are dropped first.

    Returns ``{"difference", "low", "high", "queries", "resamples", "confidence", "crosses_zero"}``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be two 1-d arrays of one length, got {a.shape} and {b.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = (a - b)[keep]
    labels = np.zeros(diff.size, dtype=np.int64) if groups is None else np.unique(
        np.asarray(groups)[keep], return_inverse=True)[1].reshape(-1)
    if diff.size == 0:
        raise ValueError("no query has a score on both sides")
    rng = np.random.default_rng(seed)
    members = [np.nonzero(labels == g)[0] for g in np.unique(labels)]
    point = float(np.mean([diff[m].mean() for m in members]))
    stats = np.zeros(resamples)
    # Resampled in blocks: resamples x queries indices at once would take hundreds of MB on large sets.
    block = max(1, 2_000_000 // max(diff.size, 1))
    for lo in range(0, resamples, block):
        n = min(block, resamples - lo)
        total = np.zeros(n)
        for m in members:
            draw = m[rng.integers(0, m.size, size=(n, m.size))]
            total += diff[draw].mean(axis=1)
        stats[lo:lo + n] = total / len(members)
    tail = (1.0 - confidence) / 2
    low, high = (float(v) for v in np.quantile(stats, [tail, 1.0 - tail]))
    return {"difference": point, "low": low, "high": high, "queries": int(diff.size), "resamples": resamples,
            "confidence": confidence, "crosses_zero": bool(low <= 0.0 <= high)}
