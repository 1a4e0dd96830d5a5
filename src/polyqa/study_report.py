"""Plots and the Markdown report of a language-scaling study (see polyqa.study)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from polyqa.batching.planner import HYBRID, MONO, XX, XY

SETTING_KEYS = {"monolingual": "monolingual", "cross-lingual": "cross_lingual", "multilingual": "multilingual"}
STRATEGY_STYLE = {MONO: "o-", XX: "s-", XY: "^-", HYBRID: "D-"}


def _primary_benchmark(rows: Sequence[Mapping[str, Any]]) -> str | None:
    for bench in ("xquad_r", "mlqa_r"):
        if any(row.get(f"{bench}_multilingual_map") is not None for row in rows):
            return bench
    return None


def _group(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[str, dict[int, list[float]]]:
    """strategy -> n_languages -> values over seeds (trained cells only)."""
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        value = row.get(metric)
        if row["n_languages"] and value is not None:
            out[row["strategy"]][int(row["n_languages"])].append(float(value))
    return out


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _zero_shot(rows: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    for row in rows:
        if row["strategy"] == "zero-shot" and row.get(metric) is not None:
            return float(row[metric])
    return None


def plot_study(rows: Sequence[Mapping[str, Any]], config: Any, out_dir: Path) -> dict[str, str]:
    """Write the study's PNG plots; returns {plot name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bench = _primary_benchmark(rows)
    if bench is None:
        return {}
    plots: dict[str, str] = {}

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=False)
    for ax, (setting, key) in zip(axes, SETTING_KEYS.items()):
        _plot_by_languages(ax, rows, f"{bench}_{key}_map")
        ax.set_title(f"{setting} mAP ({bench.replace('_', '-')})")
        ax.set_xlabel("training languages")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mAP")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    plots["map_vs_languages"] = "map_vs_languages.png"
    fig.savefig(out_dir / plots["map_vs_languages"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.2))
    _plot_by_languages(ax, rows, f"{bench}_rank_distance")
    ax.set_xlabel("training languages")
    ax.set_ylabel("rank distance (lower = less language bias)")
    ax.set_title(f"language bias ({bench.replace('_', '-')})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plots["rank_distance_vs_languages"] = "rank_distance_vs_languages.png"
    fig.savefig(out_dir / plots["rank_distance_vs_languages"], dpi=110)
    plt.close(fig)

    metric = f"{bench}_multilingual_map"
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    # Tokens, not seconds: exact and independent of what else ran on the machine.
    points = [((float(r.get("translation_tokens") or 0) + float(r.get("train_tokens") or 0)) / 1000,
               float(r[metric]), r) for r in rows if r.get(metric) is not None and r["n_languages"]]
    for strategy in sorted({p[2]["strategy"] for p in points}):
        sel = [p for p in points if p[2]["strategy"] == strategy]
        ax.scatter([p[0] for p in sel], [p[1] for p in sel], label=strategy,
                   marker=STRATEGY_STYLE.get(strategy, "x-")[0])
        for x, y, r in sel:
            ax.annotate(str(r["n_languages"]), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    frontier = _frontier([(x, y) for x, y, _ in points])
    if frontier:
        ax.plot([p[0] for p in frontier], [p[1] for p in frontier], "k:", lw=1, label="cost/quality frontier")
    ax.set_xlabel("compute: translation + training tokens, thousands (labels: training languages)")
    ax.set_ylabel("multilingual mAP")
    ax.set_title("quality against compute")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plots["map_vs_compute"] = "map_vs_compute.png"
    fig.savefig(out_dir / plots["map_vs_compute"], dpi=110)
    plt.close(fig)
    return plots


def _plot_by_languages(ax: Any, rows: Sequence[Mapping[str, Any]], metric: str) -> None:
    """One line per strategy (mean ± seed s.d. per language count), the untrained base dashed."""
    for strategy, by_n in sorted(_group(rows, metric).items()):
        ns = sorted(by_n)
        stats = [_mean_sd(by_n[n]) for n in ns]
        ax.errorbar(ns, [m for m, _ in stats], yerr=[s for _, s in stats],
                    fmt=STRATEGY_STYLE.get(strategy, "x-"), capsize=3, label=strategy)
    base = _zero_shot(rows, metric)
    if base is not None:
        ax.axhline(base, color="grey", ls="--", lw=1, label="zero-shot base")
    counts = sorted({n for by_n in _group(rows, metric).values() for n in by_n})
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.minorticks_off()


def _frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by a cheaper one (Pareto frontier, cost ascending)."""
    best = float("-inf")
    out = []
    for x, y in sorted(points):
        if y > best:
            out.append((x, y))
            best = y
    return out


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_report(rows: Sequence[Mapping[str, Any]], skipped: Sequence[Mapping[str, Any]], config: Any,
                  plots: Mapping[str, str]) -> str:
    bench = _primary_benchmark(rows)
    lines = [f"# Language-scaling study: {config.name}", ""]
    lines += [
        f"Base model: `{config.base_model}`. Training languages in order: "
        f"{', '.join(config.language_order)}; never trained on (unseen): {', '.join(config.unseen) or 'none'}.",
        f"Strategies: {', '.join(config.strategies)}; language counts: {config.language_counts}; "
        f"languages-per-batch caps: {config.languages_per_batch}; seeds: {config.seeds}"
        + (f" (+ extra seeds for {config.seed_cells})" if config.seed_cells else "") + ".",
        f"Training settings (same for every cell, fixed step budget): `{dict(config.train)}`.",
        "",
    ]
    if bench is None:
        lines.append("No LAReQA-style results yet.")
        return "\n".join(lines) + "\n"
    name = bench.replace("_", "-")
    lines += ["## Findings", ""]
    lines += _findings(rows, bench)
    lines += ["", f"## All cells ({name}, mAP)", ""]
    lines.append("| cell | mono | cross | multi | multi seen | multi unseen | rank dist. | train tokens | train s | "
                 "translation tokens | est. | pairs used | pairs skipped (why) |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["n_languages"], r["strategy"], str(r["languages_per_batch"]), r["seed"])):
        lines.append(
            f"| {r['cell']} | {_fmt(r.get(f'{bench}_monolingual_map'))} | {_fmt(r.get(f'{bench}_cross_lingual_map'))}"
            f" | {_fmt(r.get(f'{bench}_multilingual_map'))} | {_fmt(r.get(f'{bench}_multilingual_map_seen'))}"
            f" | {_fmt(r.get(f'{bench}_multilingual_map_unseen'))} | {_fmt(r.get(f'{bench}_rank_distance'), 1)}"
            f" | {_fmt(r.get('train_tokens'))} | {_fmt(r.get('train_seconds'), 0)} | {_fmt(r.get('translation_tokens'))}"
            f" | {'yes' if r.get('translation_estimated') else 'no'} | {_fmt(r.get('train_pairs_used'))}"
            f" | {_skipped(r)} |"
        )
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
        "- Translation cost marked `est.` is estimated from the English text (words x tokens per word) "
        "and an engine throughput, because the corpus was imported, not translated.",
        "- *pairs used* / *pairs skipped*: (question, language) rows the training drew from or left out "
        "(summed over the cell's languages); `quality_pass_false` rows failed a quality check, "
        "`null_positive` rows have no positive (no answer sentence when training on sentences).",
        "- Compute is measured on the machine that ran the study, which may have been shared with other "
        "work: training tokens are exact, seconds are indicative only and not portable.",
    ]
    return "\n".join(lines) + "\n"


def _skipped(row: Mapping[str, Any]) -> str:
    """'5 (null_positive 3, quality_pass_false 2)' from a cell's skipped-pair columns."""
    import json

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


def _findings(rows: Sequence[Mapping[str, Any]], bench: str) -> list[str]:
    out: list[str] = []
    for setting, key in SETTING_KEYS.items():
        metric = f"{bench}_{key}_map"
        groups = _group(rows, metric)
        base = _zero_shot(rows, metric)
        parts = [f"{strategy} {_trend(by_n)}" for strategy, by_n in sorted(groups.items())]
        base_txt = f"; zero-shot base {base:.3f}" if base is not None else ""
        out.append(f"- {setting} mAP: " + "; ".join(parts) + base_txt + ".")
        best_per_n = {}
        for strategy, by_n in groups.items():
            for n, values in by_n.items():
                m, _ = _mean_sd(values)
                if n not in best_per_n or m > best_per_n[n][1]:
                    best_per_n[n] = (strategy, m)
        if best_per_n:
            out.append("  Best strategy per language count: "
                       + ", ".join(f"n={n}: {s} ({m:.3f})" for n, (s, m) in sorted(best_per_n.items())) + ".")
    metric = f"{bench}_rank_distance"
    groups = _group(rows, metric)
    if groups:
        parts = [f"{strategy} {_trend(by_n, 1)}" for strategy, by_n in sorted(groups.items())]
        out.append("- Rank distance (language bias, lower is better): " + "; ".join(parts) + ".")
    spread = []
    for strategy, by_n in _group(rows, f"{bench}_multilingual_map").items():
        for n, values in by_n.items():
            if len(values) > 1:
                m, sd = _mean_sd(values)
                spread.append(f"{strategy} n={n}: {m:.3f} ± {sd:.3f} over {len(values)} seeds")
    if spread:
        out.append("- Seed spread (multilingual mAP): " + "; ".join(spread) + ".")
    unseen = _group(rows, f"{bench}_multilingual_map_unseen")
    if unseen:
        parts = [f"{strategy} {_trend(by_n)}" for strategy, by_n in sorted(unseen.items())]
        out.append("- Unseen languages, multilingual mAP of their queries: " + "; ".join(parts) + ".")
    return out
