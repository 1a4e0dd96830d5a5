"""The study's PNG plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from polyqa.batching.planner import HYBRID, MONO, XX, XY
from polyqa.study.analysis import ranking_benchmarks, SETTING_KEYS, cost_frontier, group_by_recipe, lareqa_benchmarks, mean_sd, pareto_front, row_alpha, row_cap, rows_by_model, trained_rows, zero_shot_value

STRATEGY_STYLE = {MONO: "o-", XX: "s-", XY: "^-", HYBRID: "D-"}


STRATEGY_COLOR = {MONO: "tab:blue", XX: "tab:purple", XY: "tab:orange", HYBRID: "tab:green"}


def _plot_name(stem: str, model: str, several: bool) -> str:
    from polyqa.study.grid import model_tag

    return f"{stem}-{model_tag(model)}.png" if several else f"{stem}.png"


def plot_study(rows: Sequence[Mapping[str, Any]], config: Any, out_dir: Path) -> dict[str, str]:
    """Write the study's PNG plots (the benchmarks side by side); returns {plot name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    groups = rows_by_model(rows, config)
    several = len(groups) > 1
    for model, model_rows in groups:
        suffix = f" [{model}]" if several else ""
        ranked = ranking_benchmarks(model_rows, config)
        if ranked:  # MIRACL-style: nDCG@10 and Recall@100 of each language's queries in its own corpus
            fig, axes = plt.subplots(len(ranked), 2, figsize=(11, 4.2 * len(ranked)), squeeze=False)
            for bi, bench in enumerate(ranked):
                for ax, (column, label) in zip(axes[bi], ((bench.ndcg_at_10, "nDCG@10"),
                                                          (bench.recall_at_100, "Recall@100"))):
                    _plot_by_languages(ax, model_rows, column, config)
                    ax.set_title(f"{label} ({bench.title}){suffix}")
                    ax.set_xlabel("training languages")
                    ax.set_ylabel(label)
                    ax.grid(alpha=0.3)
            _legend(axes[0][-1])
            _save(fig, plots, "ranking_vs_languages", model, several, out_dir)
        benches = lareqa_benchmarks(model_rows, config)
        if not benches:
            continue

        fig, axes = plt.subplots(len(benches), 3, figsize=(15, 4.2 * len(benches)), squeeze=False)
        for bi, bench in enumerate(benches):
            for ax, setting in zip(axes[bi], SETTING_KEYS):
                _plot_by_languages(ax, model_rows, bench.map(setting), config)
                ax.set_title(f"{setting} mAP ({bench.title}){suffix}")
                ax.set_xlabel("training languages")
                ax.grid(alpha=0.3)
            axes[bi][0].set_ylabel("mAP")
        _legend(axes[0][-1])
        _save(fig, plots, "map_vs_languages", model, several, out_dir)

        fig, axes = plt.subplots(1, len(benches), figsize=(6 * len(benches), 4.2), squeeze=False)
        for ax, bench in zip(axes[0], benches):
            _plot_by_languages(ax, model_rows, bench.rank_distance, config)
            ax.set_xlabel("training languages")
            ax.set_ylabel("rank distance (lower = less language bias)")
            ax.set_title(f"language bias ({bench.title}){suffix}")
            ax.grid(alpha=0.3)
            _legend(ax)
        _save(fig, plots, "rank_distance_vs_languages", model, several, out_dir)

        fig, axes = plt.subplots(1, len(benches), figsize=(6.5 * len(benches), 4.4), squeeze=False)
        for ax, bench in zip(axes[0], benches):
            _plot_compute(ax, model_rows, bench.map("multilingual"))
            ax.set_title(f"quality against compute ({bench.title}){suffix}")
        _save(fig, plots, "map_vs_compute", model, several, out_dir)

        fig, axes = plt.subplots(1, len(benches), figsize=(7.5 * len(benches), 5.6), squeeze=False)
        for ax, bench in zip(axes[0], benches):
            _plot_tradeoff(ax, model_rows, bench, config)
            ax.set_title(f"monolingual vs multilingual mAP ({bench.title}){suffix}")
        _save(fig, plots, "tradeoff", model, several, out_dir)
    return plots


def _save(fig: Any, plots: dict[str, str], stem: str, model: str, several: bool, out_dir: Path) -> None:
    """Write one figure and list it under its name (with the model, when a study has several)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    name = stem + (f" [{model}]" if several else "")
    plots[name] = _plot_name(stem, model, several)
    fig.savefig(out_dir / plots[name], dpi=110)
    plt.close(fig)


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:  # a cell set without lines (one count) has nothing to name
        ax.legend(fontsize=8)


def _plot_by_languages(ax: Any, rows: Sequence[Mapping[str, Any]], metric: str, config: Any = None) -> None:
    """One line per recipe (mean ± seed s.d. per language count), the untrained base dashed; recipes
    run at a single language count (the alpha and cap axes) are in the trade-off plot instead."""
    groups = group_by_recipe(rows, metric, config)
    for label, by_n in sorted(groups.items()):
        if len(by_n) < 2:
            continue
        ns = sorted(by_n)
        stats = [mean_sd(by_n[n]) for n in ns]
        strategy = label.split(" ")[0]
        ax.errorbar(ns, [m for m, _ in stats], yerr=[s for _, s in stats],
                    fmt=STRATEGY_STYLE.get(strategy, "x-"), capsize=3, label=label,
                    color=STRATEGY_COLOR.get(strategy) if label == strategy else None)
    base = zero_shot_value(rows, metric)
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
               float(r[metric]), r) for r in trained_rows(rows) if r.get(metric) is not None]
    for strategy in sorted({p[2]["strategy"] for p in points}):
        sel = [p for p in points if p[2]["strategy"] == strategy]
        ax.scatter([p[0] for p in sel], [p[1] for p in sel], label=strategy,
                   marker=STRATEGY_STYLE.get(strategy, "x-")[0], color=STRATEGY_COLOR.get(strategy))
        for x, y, r in sel:
            ax.annotate(str(r["n_languages"]), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    frontier = cost_frontier([(x, y) for x, y, _ in points])
    if frontier:
        ax.plot([p[0] for p in frontier], [p[1] for p in frontier], "k:", lw=1, label="cost/quality frontier")
    ax.set_xlabel("compute: translation + training tokens, thousands (labels: training languages)")
    ax.set_ylabel("multilingual mAP")
    ax.grid(alpha=0.3)
    _legend(ax)


def _point_label(row: Mapping[str, Any], config: Any) -> str:
    short = {MONO: "mono", XY: "x-y", HYBRID: "hyb", XX: "x-x"}.get(row["strategy"], row["strategy"])
    alpha = row_alpha(row, config)
    text = short + (f" a{alpha:g}" if alpha is not None else "") + f" n{row['n_languages']}"
    return text + (f" c{row_cap(row)}" if row_cap(row) is not None else "")


def _plot_tradeoff(ax: Any, rows: Sequence[Mapping[str, Any]], bench: str, config: Any) -> None:
    """One point per cell: monolingual against multilingual mAP, labelled with strategy and alpha
    (and language count, cap); the frontier joins the cells no other cell beats on both."""
    mono, multi = bench.map("monolingual"), bench.map("multilingual")
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
