"""Plots and the Markdown report of a language-scaling study (see polyqa.study).

REPORT.md opens with the answer to the study's question, generated from the table
(every number in it is a value of ``cells.csv`` or computed from the per-query
files beside the cell records): what each added training language changes and
costs, where the returns flatten, whether hybrid batches win the trade-off between
monolingual and multilingual retrieval anywhere, and how sure each comparison is
(a paired bootstrap over queries, beside the spread over seeds).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polyqa.batching.pairs import MINED
from polyqa.batching.planner import HYBRID, MONO, XX, XY

SETTING_KEYS = {"monolingual": "monolingual", "cross-lingual": "cross_lingual", "multilingual": "multilingual"}
STRATEGY_STYLE = {MONO: "o-", XX: "s-", XY: "^-", HYBRID: "D-"}
STRATEGY_COLOR = {MONO: "tab:blue", XX: "tab:purple", XY: "tab:orange", HYBRID: "tab:green"}
BENCHMARKS = {"xquad_r": "XQuAD-R", "mlqa_r": "MLQA-R"}  # LAReQA-protocol benchmarks, column prefix -> name
COMPARED = ((HYBRID, XY), (HYBRID, MONO))  # the comparisons that carry the findings
BOOTSTRAP = {"resamples": 2000, "confidence": 0.95, "seed": 0}
FLAT = 0.5  # returns "flatten" once every later step gains less than this share of the first step, per language


# ------------------------------------------------------------------ rows


def _models(config: Any) -> list[str]:
    model = getattr(config, "base_model", "")
    return [model] if isinstance(model, str) else list(model)


def _base_alpha(config: Any) -> float:
    return float((getattr(config, "train", None) or {}).get("alpha", 0.5))


def _benchmarks(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [b for b in BENCHMARKS if any(row.get(f"{b}_multilingual_map") is not None for row in rows)]


def _primary_benchmark(rows: Sequence[Mapping[str, Any]]) -> str | None:
    found = _benchmarks(rows)
    return found[0] if found else None


def _alpha(row: Mapping[str, Any], config: Any) -> float | None:
    if row.get("strategy") != HYBRID:
        return None
    value = row.get("alpha")
    return _base_alpha(config) if value in (None, "") else float(value)


def _cap(row: Mapping[str, Any]) -> int | None:
    value = row.get("languages_per_batch")
    return None if value in (None, "") else int(value)


def variant(row: Mapping[str, Any], config: Any) -> str:
    """A cell's training recipe without its language count or seed: 'x-y', 'hybrid a=0.25', 'x-y cap 2'."""
    label = str(row["strategy"])
    alpha = _alpha(row, config)
    if alpha is not None and alpha != _base_alpha(config):
        label += f" a={alpha:g}"
    if _cap(row) is not None:
        label += f" cap {_cap(row)}"
    if row.get("hard_negatives") not in (None, ""):
        label += f" {row['hard_negatives']}"
    return label


def _trained(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if r.get("n_languages")]


def _group(rows: Sequence[Mapping[str, Any]], metric: str, config: Any = None) -> dict[str, dict[int, list[float]]]:
    """variant -> n_languages -> values over seeds (trained cells only)."""
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in _trained(rows):
        value = row.get(metric)
        if value is not None and value == value:
            out[variant(row, config) if config is not None else row["strategy"]][int(row["n_languages"])].append(
                float(value))
    return out


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _means(by_n: Mapping[int, Sequence[float]]) -> dict[int, float]:
    return {n: _mean_sd(v)[0] for n, v in sorted(by_n.items()) if v}


def _zero_shot(rows: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    for row in rows:
        if row["strategy"] == "zero-shot" and row.get(metric) is not None:
            return float(row[metric])
    return None


def _by_model(rows: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[str, list[Mapping[str, Any]]]]:
    models = _models(config)
    if len(models) <= 1:
        return [(models[0] if models else "", list(rows))]
    return [(m, [r for r in rows if r.get("base_model", models[0]) == m]) for m in models]


# ------------------------------------------------------------------ significance


def load_per_query(cells_dir: Path, rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """cell label -> the columns of its per-query AP file (cells without one are left out)."""
    import pyarrow.parquet as pq

    out: dict[str, dict[str, np.ndarray]] = {}
    for row in rows:
        path = Path(cells_dir) / f"{row['cell']}-{row['key']}.queries.parquet"
        if path.is_file():
            table = pq.read_table(path)
            out[row["cell"]] = {name: np.asarray(table.column(name).to_numpy(zero_copy_only=False))
                                for name in table.column_names}
    return out


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
    for model, model_rows in _by_model(rows, config):
        cells: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
        for row in _trained(model_rows):
            recipe = variant(row, config)
            if recipe in (row["strategy"], f"{row['strategy']} {MINED}") and row["cell"] in per_query:
                cells[(recipe, int(row["n_languages"]))].append(row)
        counts = sorted({n for _, n in cells})
        compared = list(COMPARED) + [(f"{s} {MINED}", s) for s in (HYBRID, XY, MONO)]
        for bench in _benchmarks(model_rows):
            name = BENCHMARKS[bench].lower()
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
                        metric = f"{bench}_{setting}_map"
                        spread = {side: _mean_sd([float(r[metric]) for r in cells[(side, n)]
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


def _interval(test: Mapping[str, Any]) -> str:
    return f"{test['difference']:+.3f} (95% CI {test['low']:+.3f} … {test['high']:+.3f})"


# ------------------------------------------------------------------ plots


def _plot_name(stem: str, model: str, several: bool) -> str:
    from polyqa.study import model_tag

    return f"{stem}-{model_tag(model)}.png" if several else f"{stem}.png"


def plot_study(rows: Sequence[Mapping[str, Any]], config: Any, out_dir: Path) -> dict[str, str]:
    """Write the study's PNG plots (both benchmarks side by side); returns {plot name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    groups = _by_model(rows, config)
    several = len(groups) > 1
    for model, model_rows in groups:
        benches = _benchmarks(model_rows)
        if not benches:
            continue
        suffix = f" [{model}]" if several else ""

        fig, axes = plt.subplots(len(benches), 3, figsize=(15, 4.2 * len(benches)), squeeze=False)
        for bi, bench in enumerate(benches):
            for ax, (setting, key) in zip(axes[bi], SETTING_KEYS.items()):
                _plot_by_languages(ax, model_rows, f"{bench}_{key}_map", config)
                ax.set_title(f"{setting} mAP ({BENCHMARKS[bench]}){suffix}")
                ax.set_xlabel("training languages")
                ax.grid(alpha=0.3)
            axes[bi][0].set_ylabel("mAP")
        _legend(axes[0][-1])
        fig.tight_layout()
        plots[f"map_vs_languages{suffix}"] = _plot_name("map_vs_languages", model, several)
        fig.savefig(out_dir / plots[f"map_vs_languages{suffix}"], dpi=110)
        plt.close(fig)

        fig, axes = plt.subplots(1, len(benches), figsize=(6 * len(benches), 4.2), squeeze=False)
        for ax, bench in zip(axes[0], benches):
            _plot_by_languages(ax, model_rows, f"{bench}_rank_distance", config)
            ax.set_xlabel("training languages")
            ax.set_ylabel("rank distance (lower = less language bias)")
            ax.set_title(f"language bias ({BENCHMARKS[bench]}){suffix}")
            ax.grid(alpha=0.3)
            _legend(ax)
        fig.tight_layout()
        plots[f"rank_distance_vs_languages{suffix}"] = _plot_name("rank_distance_vs_languages", model, several)
        fig.savefig(out_dir / plots[f"rank_distance_vs_languages{suffix}"], dpi=110)
        plt.close(fig)

        fig, axes = plt.subplots(1, len(benches), figsize=(6.5 * len(benches), 4.4), squeeze=False)
        for ax, bench in zip(axes[0], benches):
            _plot_compute(ax, model_rows, f"{bench}_multilingual_map")
            ax.set_title(f"quality against compute ({BENCHMARKS[bench]}){suffix}")
        fig.tight_layout()
        plots[f"map_vs_compute{suffix}"] = _plot_name("map_vs_compute", model, several)
        fig.savefig(out_dir / plots[f"map_vs_compute{suffix}"], dpi=110)
        plt.close(fig)

        fig, axes = plt.subplots(1, len(benches), figsize=(7.5 * len(benches), 5.6), squeeze=False)
        for ax, bench in zip(axes[0], benches):
            _plot_tradeoff(ax, model_rows, bench, config)
            ax.set_title(f"monolingual vs multilingual mAP ({BENCHMARKS[bench]}){suffix}")
        fig.tight_layout()
        plots[f"tradeoff{suffix}"] = _plot_name("tradeoff", model, several)
        fig.savefig(out_dir / plots[f"tradeoff{suffix}"], dpi=110)
        plt.close(fig)
    return plots


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:  # a cell set without lines (one count) has nothing to name
        ax.legend(fontsize=8)


def _plot_by_languages(ax: Any, rows: Sequence[Mapping[str, Any]], metric: str, config: Any = None) -> None:
    """One line per recipe (mean ± seed s.d. per language count), the untrained base dashed; recipes
    run at a single language count (the alpha and cap axes) are in the trade-off plot instead."""
    groups = _group(rows, metric, config)
    for label, by_n in sorted(groups.items()):
        if len(by_n) < 2:
            continue
        ns = sorted(by_n)
        stats = [_mean_sd(by_n[n]) for n in ns]
        strategy = label.split(" ")[0]
        ax.errorbar(ns, [m for m, _ in stats], yerr=[s for _, s in stats],
                    fmt=STRATEGY_STYLE.get(strategy, "x-"), capsize=3, label=label,
                    color=STRATEGY_COLOR.get(strategy) if label == strategy else None)
    base = _zero_shot(rows, metric)
    if base is not None:
        ax.axhline(base, color="grey", ls="--", lw=1, label="zero-shot base")
    counts = sorted({n for by_n in groups.values() for n in by_n})
    if counts:
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [str(n) for n in counts])
        ax.minorticks_off()


def _plot_compute(ax: Any, rows: Sequence[Mapping[str, Any]], metric: str) -> None:
    # Tokens, not seconds: exact and independent of what else ran on the machine.
    points = [((float(r.get("translation_tokens") or 0) + float(r.get("train_tokens") or 0)) / 1000,
               float(r[metric]), r) for r in _trained(rows) if r.get(metric) is not None]
    for strategy in sorted({p[2]["strategy"] for p in points}):
        sel = [p for p in points if p[2]["strategy"] == strategy]
        ax.scatter([p[0] for p in sel], [p[1] for p in sel], label=strategy,
                   marker=STRATEGY_STYLE.get(strategy, "x-")[0], color=STRATEGY_COLOR.get(strategy))
        for x, y, r in sel:
            ax.annotate(str(r["n_languages"]), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    frontier = _frontier([(x, y) for x, y, _ in points])
    if frontier:
        ax.plot([p[0] for p in frontier], [p[1] for p in frontier], "k:", lw=1, label="cost/quality frontier")
    ax.set_xlabel("compute: translation + training tokens, thousands (labels: training languages)")
    ax.set_ylabel("multilingual mAP")
    ax.grid(alpha=0.3)
    _legend(ax)


def _point_label(row: Mapping[str, Any], config: Any) -> str:
    short = {MONO: "mono", XY: "x-y", HYBRID: "hyb", XX: "x-x"}.get(row["strategy"], row["strategy"])
    alpha = _alpha(row, config)
    text = short + (f" a{alpha:g}" if alpha is not None else "") + f" n{row['n_languages']}"
    return text + (f" c{_cap(row)}" if _cap(row) is not None else "")


def _plot_tradeoff(ax: Any, rows: Sequence[Mapping[str, Any]], bench: str, config: Any) -> None:
    """One point per cell: monolingual against multilingual mAP, labelled with strategy and alpha
    (and language count, cap); the frontier joins the cells no other cell beats on both."""
    mono, multi = f"{bench}_monolingual_map", f"{bench}_multilingual_map"
    points = [(float(r[mono]), float(r[multi]), r) for r in rows
              if r.get(mono) is not None and r.get(multi) is not None]
    for strategy in sorted({p[2]["strategy"] for p in points}):
        sel = [p for p in points if p[2]["strategy"] == strategy]
        ax.scatter([p[0] for p in sel], [p[1] for p in sel], label=strategy, s=22,
                   marker=STRATEGY_STYLE.get(strategy, "x-")[0], color=STRATEGY_COLOR.get(strategy, "grey"))
        for x, y, r in sel:
            ax.annotate(_point_label(r, config), (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    front = pareto_front([(x, y) for x, y, _ in points])
    if front:
        # Ringed as well as joined: a frontier of one cell has no line to draw.
        ax.plot([p[0] for p in front], [p[1] for p in front], "k:", lw=1, marker="o", markersize=11,
                markerfacecolor="none", label="frontier (no cell better on both)")
    ax.set_xlabel("monolingual mAP")
    ax.set_ylabel("multilingual mAP")
    ax.grid(alpha=0.3)
    _legend(ax)


def _frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
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


# ------------------------------------------------------------------ the answer


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}"


def _per_language(by_n: Mapping[int, float]) -> float | None:
    ns = sorted(by_n)
    if len(ns) < 2:
        return None
    return (by_n[ns[-1]] - by_n[ns[0]]) / (ns[-1] - ns[0])


def _steps(by_n: Mapping[int, float]) -> list[tuple[int, int, float]]:
    """(n_from, n_to, change per added language) between consecutive language counts."""
    ns = sorted(by_n)
    return [(a, b, (by_n[b] - by_n[a]) / (b - a)) for a, b in zip(ns, ns[1:])]


def flattening(by_n: Mapping[int, float]) -> int | None:
    """The language count after which every further step gains, per added language, less than
    ``FLAT`` of what the first step gained; None when the first step gains nothing or it never flattens."""
    steps = _steps(by_n)
    if len(steps) < 2 or steps[0][2] <= 0:
        return None
    for i in range(1, len(steps)):
        if all(g < FLAT * steps[0][2] for _, _, g in steps[i:]):
            return steps[i][0]
    return None


def _answer(rows: Sequence[Mapping[str, Any]], tests: Sequence[Mapping[str, Any]], config: Any,
            model: str) -> list[str]:
    out: list[str] = []
    benches = _benchmarks(rows)
    strategies = [s for s in (MONO, XY, HYBRID, XX) if any(r["strategy"] == s for r in _trained(rows))]
    for bench in benches:
        name = BENCHMARKS[bench]
        trend = {key: {s: _means(_group(rows, f"{bench}_{key}", config).get(s, {})) for s in strategies}
                 for key in ("monolingual_map", "multilingual_map", "rank_distance")}
        spans = {s: sorted(trend["multilingual_map"][s]) for s in strategies}
        parts = []
        for key, label, digits in (("multilingual_map", "multilingual mAP", 4),
                                   ("monolingual_map", "monolingual mAP", 4), ("rank_distance", "rank distance", 1)):
            values = [f"{s} {_signed(v, digits)}" for s in strategies
                      if (v := _per_language(trend[key][s])) is not None]
            if values:
                parts.append(f"{label} " + ", ".join(values))
        if parts:
            ranges = ", ".join(f"{s} n={spans[s][0]}→{spans[s][-1]}" for s in strategies if len(spans[s]) > 1)
            out.append(f"- **{name}, per added training language** ({ranges}): " + "; ".join(parts)
                       + " (rank distance: lower is less language bias).")
        flat = []
        for s in strategies:
            by_n = trend["multilingual_map"][s]
            steps = _steps(by_n)
            if len(steps) < 2:
                continue
            where = flattening(by_n)
            gains = ", ".join(f"{a}→{b} {_signed(g, 4)}" for a, b, g in steps)
            flat.append(f"{s} " + (f"flattens after n={where}" if where else "does not flatten") + f" ({gains})")
        if flat:
            out.append(f"- **Where returns flatten** ({name} multilingual mAP per added language, step by step): "
                       + "; ".join(flat) + f". Flattening: every later step gains less than {FLAT:g}x the first.")
    cost = _cost_sentence(rows, config)
    if cost:
        out.append(cost)
    for bench in benches:
        out.append(_tradeoff_sentence(rows, bench, config))
    top = [t for t in tests if t["base_model"] == model]
    if not top:
        out.append("- **Significance**: not computed: no cell pair with per-query results (records written "
                   "before per-query APs were kept, or a comparison's strategy missing).")
    if top:
        n_top = max(t["n_languages"] for t in top)
        for bench in benches:
            sel = [t for t in top if t["benchmark"] == bench and t["n_languages"] == n_top]
            if not sel:
                continue
            seeds = sorted({(t["a"], t["seeds_a"]) for t in sel} | {(t["b"], t["seeds_b"]) for t in sel})
            parts = [f"{t['a']} − {t['b']} {t['setting']} mAP {_interval(t)}: **{verdict(t)}**" for t in sel]
            out.append(f"- **Significance at n={n_top}, {BENCHMARKS[bench]}** (paired bootstrap over queries; "
                       + ", ".join(f"{s} {k} seed{'s' if k > 1 else ''}" for s, k in seeds) + "): "
                       + "; ".join(parts) + ".")
        rd = []
        for bench in benches:
            values = []
            for s in strategies:
                v = _means(_group(rows, f"{bench}_rank_distance", config).get(s, {})).get(n_top)
                if v is not None:
                    values.append(f"{s} {v:.1f}")
            if values:
                rd.append(f"{BENCHMARKS[bench]} " + ", ".join(values))
        if rd:
            out.append(f"- **Language bias at n={n_top}** (rank distance, lower is better): " + "; ".join(rd) + ".")
    return out


def _cost_sentence(rows: Sequence[Mapping[str, Any]], config: Any) -> str | None:
    """What each added language costs: translation tokens and training tokens, from the table."""
    default = [r for r in _trained(rows) if variant(r, config) == r["strategy"]]
    trans: dict[int, list[float]] = defaultdict(list)
    train: dict[int, list[float]] = defaultdict(list)
    for r in default:
        n = int(r["n_languages"])
        if r.get("translation_tokens") is not None:
            trans[n].append(float(r["translation_tokens"]))
        if r.get("train_tokens") is not None:
            train[n].append(float(r["train_tokens"]))
    t_mean, k_mean = _means(trans), _means(train)
    if len(t_mean) < 2 and len(k_mean) < 2:
        return None
    parts = []
    if len(t_mean) >= 2:
        per = _per_language(t_mean)
        estimated = any(r.get("translation_estimated") in (True, "true") for r in default)
        ns = sorted(t_mean)
        how = "; estimated from the English text, the corpus was imported" if estimated else ""
        parts.append(f"{per:,.0f} translation tokens ({t_mean[ns[0]]:,.0f} at n={ns[0]} → {t_mean[ns[-1]]:,.0f} at "
                     f"n={ns[-1]}{how})")
    if len(k_mean) >= 2:
        ns = sorted(k_mean)
        parts.append(f"{_per_language(k_mean):+,.0f} training tokens per cell ({k_mean[ns[0]]:,.0f} at n={ns[0]} → "
                     f"{k_mean[ns[-1]]:,.0f} at n={ns[-1]}, mean over strategies; the step budget is fixed, so "
                     "languages change the tokens per step, not the steps)")
    return "- **Cost of each added language**: " + "; ".join(parts) + "."


def _tradeoff_sentence(rows: Sequence[Mapping[str, Any]], bench: str, config: Any) -> str:
    """Is any hybrid recipe on the monolingual/multilingual frontier (seed means per recipe and count)?"""
    mono, multi = f"{bench}_monolingual_map", f"{bench}_multilingual_map"
    recipes: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for r in _trained(rows):
        if r.get(mono) is not None and r.get(multi) is not None:
            recipes[(variant(r, config), int(r["n_languages"]))].append((float(r[mono]), float(r[multi])))
    points = {k: (statistics.fmean(p[0] for p in v), statistics.fmean(p[1] for p in v)) for k, v in recipes.items()}
    front = set(pareto_front(list(points.values())))
    on_front = sorted((k for k, p in points.items() if p in front), key=lambda k: -points[k][0])
    name = BENCHMARKS[bench]
    listed = ", ".join(f"{v} n={n} ({points[(v, n)][0]:.3f} / {points[(v, n)][1]:.3f})" for v, n in on_front)
    hybrids = [k for k in on_front if k[0].startswith(HYBRID)]
    if hybrids:
        verdict_ = ("hybrid is on it: " + ", ".join(f"{v} n={n}" for v, n in hybrids)
                    + " (no other recipe beats it on both)")
    else:
        beaten = []
        for k, p in sorted(points.items()):
            if k[0].startswith(HYBRID):
                better = [j for j, q in points.items() if j != k and q[0] >= p[0] and q[1] >= p[1] and q != p]
                if better:
                    j = max(better, key=lambda j: points[j][0] + points[j][1])
                    beaten.append(f"{k[0]} n={k[1]} by {j[0]} n={j[1]}")
        verdict_ = "no hybrid recipe is on it" + (f" (e.g. {'; '.join(beaten[:3])})" if beaten else "")
    chord, above = [], []
    # Better than choosing between the two? The straight line from x-x-mono to x-y at the same count is
    # what a mere mix of their trade-offs would give; a hybrid above it gains more than that.
    for (label, n), (h_mono, h_multi) in sorted(points.items()):
        ends = points.get((MONO, n)), points.get((XY, n))
        if not label.startswith(HYBRID) or None in ends:
            continue
        (m_mono, m_multi), (y_mono, y_multi) = ends
        if not min(m_mono, y_mono) <= h_mono <= max(m_mono, y_mono) or m_mono == y_mono:
            chord.append(f"{label} n={n}: monolingual {h_mono:.3f} outside x-y–x-x-mono's {y_mono:.3f}…{m_mono:.3f}")
            continue
        line = y_multi + (m_multi - y_multi) * (h_mono - y_mono) / (m_mono - y_mono)
        gain = h_multi - line
        if gain > 0:
            above.append((gain, f"{label} n={n}"))
        chord.append(f"{label} n={n} {'above' if gain > 0 else 'below'} it by {gain:+.3f} "
                     f"({h_multi:.3f} vs {line:.3f})")
    chord_txt = ("; against the straight line from x-y to x-x-mono at the same language count (multilingual "
                 "mAP at hybrid's monolingual mAP): " + ", ".join(chord)) if chord else ""
    if above:  # where hybrid's trade-off is best: the recipe that gains most over a mere mix
        gain, label = max(above)
        chord_txt += f"; farthest above it: {label} ({gain:+.3f})"
    return (f"- **Trade-off, {name}** (monolingual / multilingual mAP, seed means per recipe): the frontier is "
            f"{listed}; {verdict_}{chord_txt}.")


# ------------------------------------------------------------------ the report


def render_report(rows: Sequence[Mapping[str, Any]], skipped: Sequence[Mapping[str, Any]], config: Any,
                  plots: Mapping[str, str], tests: Sequence[Mapping[str, Any]] = ()) -> str:
    lines = [f"# Language-scaling study: {config.name}", ""]
    benches = _benchmarks(rows)
    groups = _by_model(rows, config)
    if benches:
        lines += ["## Answer", ""]
        notes = (getattr(config, "notes", "") or "").strip()
        lines += [("Small-scale run: " if "small-scale" in notes.lower() else "")
                  + "every figure below is a value of `cells.csv` or computed from the per-query results beside "
                  "the cell records; read it with *What this does and does not show* at the end.", ""]
        for model, model_rows in groups:
            if len(groups) > 1:
                lines += [f"### {model}", ""]
            lines += _answer(model_rows, tests, config, model) + [""]
    lines += ["## Set-up", ""]
    lines += _setup_lines(rows, config)
    if not benches:
        lines += ["", "No LAReQA-style results yet."]
        return "\n".join(lines) + "\n"
    if tests:
        lines += ["", "## Significance: paired bootstrap over queries", "",
                  f"95% percentile interval of the mAP difference over {BOOTSTRAP['resamples']} resamples of the "
                  "queries (drawn within each query language, so the statistic is the macro mAP of the table; "
                  f"seed {BOOTSTRAP['seed']}). A side with several seeds enters with each query's AP averaged over "
                  "its seeds; the seed columns give mean ± s.d. of the cells' mAP. **no difference** wherever the "
                  "interval crosses zero.", "",
                  "| model | benchmark | n | setting | comparison | difference | 95% interval | verdict | "
                  "seeds: a | seeds: b | queries |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in tests:
            lines.append(
                f"| {t['base_model']} | {BENCHMARKS[t['benchmark']]} | {t['n_languages']} | {t['setting']} | "
                f"{t['a']} − {t['b']} | {t['difference']:+.4f} | {t['low']:+.4f} … {t['high']:+.4f} | "
                f"{verdict(t)} | {t['mean_a']:.3f} ± {t['sd_a']:.3f} ({t['seeds_a']}) | "
                f"{t['mean_b']:.3f} ± {t['sd_b']:.3f} ({t['seeds_b']}) | {t['queries']} |")
    findings = []
    for model, model_rows in groups:
        per_model = []
        for bench in _benchmarks(model_rows):
            found = _findings(model_rows, bench, config, [t for t in tests if t["base_model"] == model])
            if found:  # a partial grid (one language count so far) has no trend to state
                per_model += [f"#### {BENCHMARKS[bench]}", "", *found, ""]
        if per_model:
            findings += ([f"### {model}", ""] if len(groups) > 1 else []) + per_model
    if findings:
        lines += ["", "## Findings", "", *findings]
    axes = _axes_lines(rows, config)
    if axes:
        lines += ["## Mixing weight and languages per batch", ""] + axes + [""]
    lines += _cells_table(rows, config)
    if skipped:
        lines += ["", "Combinations left out of the grid:", ""]
        lines += [f"- n={s['n_languages']} {s['strategy']} cap={s['cap']}: {s['why']}" for s in skipped]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{key}]({file})" for key, file in plots.items()]
    lines += ["", "## What this does and does not show", ""]
    if getattr(config, "notes", ""):
        lines += [config.notes.strip(), ""]
    lines += [
        "- Each cell trains for the same number of steps, so cells differ in languages and batch "
        "composition, not in training length. Seed spread is reported where a cell has several seeds; "
        "differences smaller than that spread are not findings.",
        "- The bootstrap interval says how much a difference depends on the queries asked, for these trained "
        "models; the seed spread says how much it depends on the training run. A finding needs both.",
        "- Translation cost marked `est.` is estimated from the English text (words x tokens per word) "
        "and an engine throughput, because the corpus was imported, not translated.",
        "- *pairs used* / *pairs skipped*: (question, language) rows the training drew from or left out "
        "(summed over the cell's languages); `quality_pass_false` rows failed a quality check, "
        "`null_positive` rows have no positive (no answer sentence when training on sentences).",
        "- Compute is measured on the machine that ran the study, which may have been shared with other "
        "work: training tokens are exact, seconds are indicative only and not portable.",
        "- mAP@20 (XTREME-R) counts only relevant candidates ranked in the top 20; mAP (LAReQA) counts all.",
    ]
    return "\n".join(lines) + "\n"


def _setup_lines(rows: Sequence[Mapping[str, Any]], config: Any) -> list[str]:
    models = _models(config)
    extra = list(getattr(config, "extra_cells", []) or []) + list(getattr(config, "seed_cells", []) or [])
    lines = [
        f"Base model{'s' if len(models) > 1 else ''}: {', '.join(f'`{m}`' for m in models)}. Training languages "
        f"in order: {', '.join(config.language_order)}; never trained on (unseen): "
        f"{', '.join(config.unseen) or 'none'}.",
        f"Main grid: strategies {', '.join(config.strategies)}; language counts {config.language_counts}; "
        f"languages-per-batch caps {config.languages_per_batch}; hybrid alpha "
        f"{[a if a is not None else _base_alpha(config) for a in (getattr(config, 'alphas', None) or [None])]}; "
        f"seeds {config.seeds}.",
    ]
    if extra:
        lines.append("Extra cells: " + "; ".join(json.dumps(e, default=str) for e in extra) + ".")
    lines.append(f"Training settings (same for every cell, fixed step budget): `{dict(config.train)}`.")
    for spec in getattr(config, "evaluate", []) or []:
        bench = str(spec.get("benchmark", "")).replace("-", "_")
        counts = {(r.get(f"{bench}_queries"), r.get(f"{bench}_candidates")) for r in rows
                  if r.get(f"{bench}_queries") is not None}
        if spec.get("held_out"):
            which = "the held-out articles of the split (never trained on)"
        elif spec.get("sample_articles"):
            which = (f"a seeded article-level subset: {spec['sample_articles']} articles (sample_seed "
                     f"{spec.get('sample_seed', 0)}), the same for every cell")
        else:
            which = "every article"
        size = ""
        if len(counts) == 1:
            q, c = next(iter(counts))
            size = f"; {q} queries and {c} candidates in every cell"
        elif counts:
            size = "; query and candidate counts differ between cells: " + ", ".join(f"{q}/{c}" for q, c in counts)
        candidates = spec.get("candidates", "sentence+context")
        lines.append(f"Evaluation `{spec.get('benchmark')}`: {which}, candidates `{candidates}`{size}.")
    return lines


def _findings(rows: Sequence[Mapping[str, Any]], bench: str, config: Any = None,
              tests: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    out: list[str] = []
    for setting, key in SETTING_KEYS.items():
        metric = f"{bench}_{key}_map"
        groups = {k: v for k, v in _group(rows, metric, config).items() if len(v) > 1}
        base = _zero_shot(rows, metric)
        parts = [f"{label} {_trend(by_n)}" for label, by_n in sorted(groups.items())]
        base_txt = f"; zero-shot base {base:.3f}" if base is not None else ""
        if parts:
            out.append(f"- {setting} mAP: " + "; ".join(parts) + base_txt + ".")
        best_per_n: dict[int, tuple[str, float]] = {}
        for label, by_n in groups.items():
            for n, values in by_n.items():
                m, _ = _mean_sd(values)
                if n not in best_per_n or m > best_per_n[n][1]:
                    best_per_n[n] = (label, m)
        if best_per_n:
            notes = []
            for n, (label, _) in sorted(best_per_n.items()):
                for t in tests:
                    if (t["benchmark"] == bench and t["n_languages"] == n and t["setting"] == setting
                            and label in (t["a"], t["b"]) and t["crosses_zero"]):
                        notes.append(f"n={n}: {t['a']} vs {t['b']} no difference")
            out.append("  Best strategy per language count: "
                       + ", ".join(f"n={n}: {s} ({m:.3f})" for n, (s, m) in sorted(best_per_n.items())) + "."
                       + (f" Bootstrap: {'; '.join(notes)}." if notes else ""))
    at20 = {k: v for k, v in _group(rows, f"{bench}_multilingual_map_at_20", config).items() if len(v) > 1}
    if at20:
        out.append("- multilingual mAP@20 (XTREME-R): "
                   + "; ".join(f"{label} {_trend(by_n)}" for label, by_n in sorted(at20.items())) + ".")
    metric = f"{bench}_rank_distance"
    groups = {k: v for k, v in _group(rows, metric, config).items() if len(v) > 1}
    if groups:
        parts = [f"{label} {_trend(by_n, 1)}" for label, by_n in sorted(groups.items())]
        out.append("- Rank distance (language bias, lower is better): " + "; ".join(parts) + ".")
    spread = []
    for label, by_n in sorted(_group(rows, f"{bench}_multilingual_map", config).items()):
        for n, values in sorted(by_n.items()):
            if len(values) > 1:
                m, sd = _mean_sd(values)
                spread.append(f"{label} n={n}: {m:.3f} ± {sd:.3f} over {len(values)} seeds")
    if spread:
        out.append("- Seed spread (multilingual mAP): " + "; ".join(spread) + ".")
    unseen = {k: v for k, v in _group(rows, f"{bench}_multilingual_map_unseen", config).items() if len(v) > 1}
    if unseen:
        parts = [f"{label} {_trend(by_n)}" for label, by_n in sorted(unseen.items())]
        out.append("- Unseen languages, multilingual mAP of their queries: " + "; ".join(parts) + ".")
    return out


def _axes_lines(rows: Sequence[Mapping[str, Any]], config: Any) -> list[str]:
    """The recipes run at one language count only (alpha and cap axes) beside the main recipes there."""
    trained = _trained(rows)
    by_recipe_n: dict[int, set[str]] = defaultdict(set)
    for r in trained:
        by_recipe_n[int(r["n_languages"])].add(variant(r, config))
    axis_ns = sorted(n for n, labels in by_recipe_n.items() if any(label != label.split(" ")[0] for label in labels))
    if not axis_ns:
        return []
    lines = []
    for n in axis_ns:
        at_n = [r for r in trained if int(r["n_languages"]) == n]
        recipes: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for r in at_n:
            recipes[variant(r, config)].append(r)
        benches = _benchmarks(at_n)
        head = "| recipe | seeds | " + " | ".join(
            f"{BENCHMARKS[b]} mono | {BENCHMARKS[b]} multi | {BENCHMARKS[b]} rank dist." for b in benches) + " |"
        lines += [f"At n={n} (mean ± s.d. over seeds where there are several):", "", head,
                  "|---|---|" + "---|" * (3 * len(benches))]
        for label in sorted(recipes, key=lambda v: (v.split(" ")[0], v)):
            cells = []
            for b in benches:
                for metric, digits in (("monolingual_map", 3), ("multilingual_map", 3), ("rank_distance", 1)):
                    values = [float(r[f"{b}_{metric}"]) for r in recipes[label] if r.get(f"{b}_{metric}") is not None]
                    if not values:
                        cells.append("–")
                        continue
                    m, sd = _mean_sd(values)
                    cells.append(f"{m:.{digits}f}" + (f" ± {sd:.{digits}f}" if len(values) > 1 else ""))
            lines.append(f"| {label} | {len(recipes[label])} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _cells_table(rows: Sequence[Mapping[str, Any]], config: Any) -> list[str]:
    benches = _benchmarks(rows)
    names = " and ".join(BENCHMARKS[b] for b in benches)
    lines = ["## All cells", "", f"mAP on {names}; *@20* is multilingual mAP@20; *rank* is rank distance.", ""]
    head = "| cell | alpha |"
    for b in benches:
        n = BENCHMARKS[b]
        head += f" {n} mono | {n} cross | {n} multi | {n} multi@20 | {n} multi seen | {n} multi unseen | {n} rank |"
    head += (" train tokens | train s | translation tokens | est. | pairs used | pairs skipped (why) |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(rows, key=lambda r: (str(r.get("base_model", "")), r["n_languages"], r["strategy"],
                                          _alpha(r, config) or 0.0, _cap(r) or 0, r["seed"])):
        line = f"| {r['cell']} | {_fmt(_alpha(r, config), 2)} |"
        for b in benches:
            line += (f" {_fmt(r.get(f'{b}_monolingual_map'))} | {_fmt(r.get(f'{b}_cross_lingual_map'))}"
                     f" | {_fmt(r.get(f'{b}_multilingual_map'))} | {_fmt(r.get(f'{b}_multilingual_map_at_20'))}"
                     f" | {_fmt(r.get(f'{b}_multilingual_map_seen'))} | {_fmt(r.get(f'{b}_multilingual_map_unseen'))}"
                     f" | {_fmt(r.get(f'{b}_rank_distance'), 1)} |")
        line += (f" {_fmt(r.get('train_tokens'))} | {_fmt(r.get('train_seconds'), 0)}"
                 f" | {_fmt(r.get('translation_tokens'))}"
                 f" | {'yes' if r.get('translation_estimated') in (True, 'true') else 'no'} | "
                 f"{_fmt(r.get('train_pairs_used'))} | {_skipped(r)} |")
        lines.append(line)
    return lines


def _skipped(row: Mapping[str, Any]) -> str:
    """'5 (null_positive 3, quality_pass_false 2)' from a cell's skipped-pair columns."""
    total = row.get("train_pairs_skipped")
    if total is None:
        return "–"
    try:
        reasons = json.loads(row.get("train_pairs_skipped_reasons") or "{}")
    except ValueError:
        reasons = {}
    why = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return f"{total} ({why})" if why else str(total)


def _trend(by_n: Mapping[int, Sequence[float]], digits: int = 3) -> str:
    """'a (n=lo) → b (n=hi), change ±d', or the single value when there is one count."""
    ns = sorted(by_n)
    lo, hi = _mean_sd(by_n[ns[0]])[0], _mean_sd(by_n[ns[-1]])[0]
    if len(ns) == 1:
        return f"{lo:.{digits}f} (n={ns[0]})"
    return f"{lo:.{digits}f} (n={ns[0]}) → {hi:.{digits}f} (n={ns[-1]}), change {hi - lo:+.{digits}f}"
