"""What the report computes from the table: recipes, trends, flattening, frontiers and the
paired bootstrap between recipes."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from polyqa.batching.pairs import MINED
from polyqa.study.results import BenchmarkColumns
from polyqa.batching.planner import HYBRID, MONO, XY

SETTING_KEYS = {"monolingual": "monolingual", "cross-lingual": "cross_lingual", "multilingual": "multilingual"}




COMPARED = ((HYBRID, XY), (HYBRID, MONO))  # the comparisons that carry the findings


BOOTSTRAP = {"resamples": 2000, "confidence": 0.95, "seed": 0}


FLAT = 0.5  # returns "flatten" once every later step gains less than this share of the first step, per language


def base_models_of(config: Any) -> list[str]:
    model = getattr(config, "base_model", "")
    return [model] if isinstance(model, str) else list(model)


def base_alpha_of(config: Any) -> float:
    return float((getattr(config, "train", None) or {}).get("alpha", 0.5))


def study_benchmarks(config: Any) -> list[BenchmarkColumns]:
    """The benchmarks the study evaluates, in the config's order."""
    names = [str(spec.get("benchmark")) for spec in getattr(config, "evaluate", None) or []]
    return [BenchmarkColumns(name) for name in dict.fromkeys(names)]


def lareqa_benchmarks(rows: Sequence[Mapping[str, Any]], config: Any) -> list[BenchmarkColumns]:
    """The study's benchmarks scored by mAP over language pairs (LAReQA's protocol) that have results."""
    return [b for b in study_benchmarks(config) if any(row.get(b.map("multilingual")) is not None for row in rows)]


def ranking_benchmarks(rows: Sequence[Mapping[str, Any]], config: Any) -> list[BenchmarkColumns]:
    """The study's benchmarks scored by nDCG@10 per language (MIRACL's protocol) that have results."""
    return [b for b in study_benchmarks(config) if any(row.get(b.ndcg_at_10) is not None for row in rows)]


def row_alpha(row: Mapping[str, Any], config: Any) -> float | None:
    if row.get("strategy") != HYBRID:
        return None
    value = row.get("alpha")
    return base_alpha_of(config) if value in (None, "") else float(value)


def row_cap(row: Mapping[str, Any]) -> int | None:
    value = row.get("languages_per_batch")
    return None if value in (None, "") else int(value)


def variant(row: Mapping[str, Any], config: Any) -> str:
    """A cell's training recipe without its language count or seed: 'x-y', 'hybrid a=0.25', 'x-y cap 2'."""
    label = str(row["strategy"])
    alpha = row_alpha(row, config)
    if alpha is not None and alpha != base_alpha_of(config):
        label += f" a={alpha:g}"
    if row_cap(row) is not None:
        label += f" cap {row_cap(row)}"
    if row.get("hard_negatives") not in (None, ""):
        label += f" {row['hard_negatives']}"
    return label


def trained_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if r.get("n_languages")]


def group_by_recipe(rows: Sequence[Mapping[str, Any]], metric: str, config: Any = None) -> dict[str, dict[int, list[float]]]:
    """variant -> n_languages -> values over seeds (trained cells only)."""
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in trained_rows(rows):
        value = row.get(metric)
        if value is not None and value == value:
            out[variant(row, config) if config is not None else row["strategy"]][int(row["n_languages"])].append(
                float(value))
    return out


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def means_by_n(by_n: Mapping[int, Sequence[float]]) -> dict[int, float]:
    return {n: mean_sd(v)[0] for n, v in sorted(by_n.items()) if v}


def zero_shot_value(rows: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    for row in rows:
        if row["strategy"] == "zero-shot" and row.get(metric) is not None:
            return float(row[metric])
    return None


def rows_by_model(rows: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[str, list[Mapping[str, Any]]]]:
    models = base_models_of(config)
    if len(models) <= 1:
        return [(models[0] if models else "", list(rows))]
    return [(m, [r for r in rows if r.get("base_model", models[0]) == m]) for m in models]


def _seed_mean_ap(tables: Sequence[Mapping[str, np.ndarray]], bench: str,
                  setting: str) -> dict[tuple[str, str], float]:
    """(language, qid) -> AP averaged over the seeds' cells (queries every seed has)."""
    per_seed = []
    for t in tables:
        sel = (t["benchmark"] == bench) & (t["setting"] == setting)
        per_seed.append(dict(zip(zip(t["language"][sel].tolist(), t["qid"][sel].tolist()),
                                 t["ap"][sel].astype(np.float64).tolist())))
    common = set.intersection(*(set(d) for d in per_seed)) if per_seed else set()
    return {k: float(np.mean([d[k] for d in per_seed])) for k in common}


def significance(rows: Sequence[Mapping[str, Any]], per_query: Mapping[str, Mapping[str, np.ndarray]],
                 config: Any) -> list[dict[str, Any]]:
    """Paired bootstrap over queries of hybrid vs x-y, hybrid vs x-x-mono and, where a strategy has cells
    with mined negatives, '<strategy> mined' vs '<strategy>' (monolingual and multilingual mAP), per
    benchmark and language count where both sides have per-query results.

    Both sides use the study's own alpha and the main cap. A side with several seeds enters with
    each query's AP averaged over its seeds (so the interval is about which queries were asked,
    for the seed-averaged models); the spread over seeds is reported beside it.
    """
    from polyqa.evaluate.metrics import paired_bootstrap

    results = []
    for model, model_rows in rows_by_model(rows, config):
        cells: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
        for row in trained_rows(model_rows):
            recipe = variant(row, config)
            if recipe in (row["strategy"], f"{row['strategy']} {MINED}") and row["cell"] in per_query:
                cells[(recipe, int(row["n_languages"]))].append(row)
        counts = sorted({n for _, n in cells})
        compared = list(COMPARED) + [(f"{s} {MINED}", s) for s in (HYBRID, XY, MONO)]
        for bench in lareqa_benchmarks(model_rows, config):
            name = bench.benchmark
            for n in counts:
                for a, b in compared:
                    if (a, n) not in cells or (b, n) not in cells:
                        continue
                    for setting in ("monolingual", "multilingual"):
                        side_a = _seed_mean_ap([per_query[r["cell"]] for r in cells[(a, n)]], name, setting)
                        side_b = _seed_mean_ap([per_query[r["cell"]] for r in cells[(b, n)]], name, setting)
                        keys = sorted(set(side_a) & set(side_b))
                        if not keys:
                            continue
                        test = paired_bootstrap(np.array([side_a[k] for k in keys]),
                                                np.array([side_b[k] for k in keys]),
                                                np.array([k[0] for k in keys]), **BOOTSTRAP)
                        metric = bench.map(setting)
                        spread = {side: mean_sd([float(r[metric]) for r in cells[(side, n)]
                                                  if r.get(metric) is not None] or [float("nan")])
                                  for side in (a, b)}
                        results.append({
                            "base_model": model, "benchmark": bench, "n_languages": n, "setting": setting,
                            "a": a, "b": b, "seeds_a": len(cells[(a, n)]), "seeds_b": len(cells[(b, n)]),
                            "mean_a": spread[a][0], "sd_a": spread[a][1],
                            "mean_b": spread[b][0], "sd_b": spread[b][1],
                            **test,
                        })
    return results


def verdict(test: Mapping[str, Any]) -> str:
    """'no difference' when the interval crosses zero, else which side is better."""
    if test["crosses_zero"]:
        return "no difference"
    return f"{test['a'] if test['difference'] > 0 else test['b']} better"


def interval_text(test: Mapping[str, Any]) -> str:
    return f"{test['difference']:+.3f} (95% CI {test['low']:+.3f} … {test['high']:+.3f})"


def cost_frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by a cheaper one (Pareto frontier, cost ascending)."""
    best = float("-inf")
    out = []
    for x, y in sorted(points):
        if y > best:
            out.append((x, y))
            best = y
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both coordinates (both higher is better), by the first ascending."""
    best = float("-inf")
    out = []
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if y > best:
            out.append((x, y))
            best = y
    return sorted(out)


def change_per_language(by_n: Mapping[int, float]) -> float | None:
    ns = sorted(by_n)
    if len(ns) < 2:
        return None
    return (by_n[ns[-1]] - by_n[ns[0]]) / (ns[-1] - ns[0])


def steps_of(by_n: Mapping[int, float]) -> list[tuple[int, int, float]]:
    """(n_from, n_to, change per added language) between consecutive language counts."""
    ns = sorted(by_n)
    return [(a, b, (by_n[b] - by_n[a]) / (b - a)) for a, b in zip(ns, ns[1:])]


def flattening(by_n: Mapping[int, float]) -> int | None:
    """The language count after which every further step gains, per added language, less than
    ``FLAT`` of what the first step gained; None when the first step gains nothing or it never flattens."""
    steps = steps_of(by_n)
    if len(steps) < 2 or steps[0][2] <= 0:
        return None
    for i in range(1, len(steps)):
        if all(g < FLAT * steps[0][2] for _, _, g in steps[i:]):
            return steps[i][0]
    return None
