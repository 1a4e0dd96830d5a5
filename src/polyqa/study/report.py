"""Plots and the Markdown report of a language-scaling study .

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
from typing import Any

from polyqa.batching.planner import HYBRID, MONO, XX, XY
from polyqa.study.results import BenchmarkColumns
from polyqa.study.analysis import ranking_benchmarks, BOOTSTRAP, FLAT, SETTING_KEYS, base_alpha_of, base_models_of, change_per_language, flattening, group_by_recipe, interval_text, lareqa_benchmarks, mean_sd, means_by_n, pareto_front, row_alpha, row_cap, rows_by_model, steps_of, trained_rows, variant, verdict, zero_shot_value

def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}"


def _answer(rows: Sequence[Mapping[str, Any]], tests: Sequence[Mapping[str, Any]], config: Any,
            model: str) -> list[str]:
    out: list[str] = []
    benches = lareqa_benchmarks(rows, config)
    strategies = [s for s in (MONO, XY, HYBRID, XX) if any(r["strategy"] == s for r in trained_rows(rows))]
    for bench in benches:
        name = bench.title
        trend = {key: {s: means_by_n(group_by_recipe(rows, bench.column(key), config).get(s, {})) for s in strategies}
                 for key in ("monolingual_map", "multilingual_map", "rank_distance")}
        spans = {s: sorted(trend["multilingual_map"][s]) for s in strategies}
        parts = []
        for key, label, digits in (("multilingual_map", "multilingual mAP", 4),
                                   ("monolingual_map", "monolingual mAP", 4), ("rank_distance", "rank distance", 1)):
            values = [f"{s} {_signed(v, digits)}" for s in strategies
                      if (v := change_per_language(trend[key][s])) is not None]
            if values:
                parts.append(f"{label} " + ", ".join(values))
        if parts:
            ranges = ", ".join(f"{s} n={spans[s][0]}→{spans[s][-1]}" for s in strategies if len(spans[s]) > 1)
            out.append(f"- **{name}, per added training language** ({ranges}): " + "; ".join(parts)
                       + " (rank distance: lower is less language bias).")
        flat = []
        for s in strategies:
            by_n = trend["multilingual_map"][s]
            steps = steps_of(by_n)
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
            parts = [f"{t['a']} − {t['b']} {t['setting']} mAP {interval_text(t)}: **{verdict(t)}**" for t in sel]
            out.append(f"- **Significance at n={n_top}, {bench.title}** (paired bootstrap over queries; "
                       + ", ".join(f"{s} {k} seed{'s' if k > 1 else ''}" for s, k in seeds) + "): "
                       + "; ".join(parts) + ".")
        rd = []
        for bench in benches:
            values = []
            for s in strategies:
                v = means_by_n(group_by_recipe(rows, bench.rank_distance, config).get(s, {})).get(n_top)
                if v is not None:
                    values.append(f"{s} {v:.1f}")
            if values:
                rd.append(f"{bench.title} " + ", ".join(values))
        if rd:
            out.append(f"- **Language bias at n={n_top}** (rank distance, lower is better): " + "; ".join(rd) + ".")
    return out


def _cost_sentence(rows: Sequence[Mapping[str, Any]], config: Any) -> str | None:
    """What each added language costs: translation tokens and training tokens, from the table."""
    default = [r for r in trained_rows(rows) if variant(r, config) == r["strategy"]]
    trans: dict[int, list[float]] = defaultdict(list)
    train: dict[int, list[float]] = defaultdict(list)
    for r in default:
        n = int(r["n_languages"])
        if r.get("translation_tokens") is not None:
            trans[n].append(float(r["translation_tokens"]))
        if r.get("train_tokens") is not None:
            train[n].append(float(r["train_tokens"]))
    t_mean, k_mean = means_by_n(trans), means_by_n(train)
    if len(t_mean) < 2 and len(k_mean) < 2:
        return None
    parts = []
    if len(t_mean) >= 2:
        per = change_per_language(t_mean)
        estimated = any(r.get("translation_estimated") in (True, "true") for r in default)
        ns = sorted(t_mean)
        how = "; estimated from the English text, the corpus was imported" if estimated else ""
        parts.append(f"{per:,.0f} translation tokens ({t_mean[ns[0]]:,.0f} at n={ns[0]} → {t_mean[ns[-1]]:,.0f} at "
                     f"n={ns[-1]}{how})")
    if len(k_mean) >= 2:
        ns = sorted(k_mean)
        parts.append(f"{change_per_language(k_mean):+,.0f} training tokens per cell ({k_mean[ns[0]]:,.0f} at n={ns[0]} → "
                     f"{k_mean[ns[-1]]:,.0f} at n={ns[-1]}, mean over strategies; the step budget is fixed, so "
                     "languages change the tokens per step, not the steps)")
    return "- **Cost of each added language**: " + "; ".join(parts) + "."


def _tradeoff_sentence(rows: Sequence[Mapping[str, Any]], bench: str, config: Any) -> str:
    """Is any hybrid recipe on the monolingual/multilingual frontier (seed means per recipe and count)?"""
    mono, multi = bench.map("monolingual"), bench.map("multilingual")
    recipes: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for r in trained_rows(rows):
        if r.get(mono) is not None and r.get(multi) is not None:
            recipes[(variant(r, config), int(r["n_languages"]))].append((float(r[mono]), float(r[multi])))
    points = {k: (statistics.fmean(p[0] for p in v), statistics.fmean(p[1] for p in v)) for k, v in recipes.items()}
    front = set(pareto_front(list(points.values())))
    on_front = sorted((k for k, p in points.items() if p in front), key=lambda k: -points[k][0])
    name = bench.title
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


def render_report(rows: Sequence[Mapping[str, Any]], skipped: Sequence[Mapping[str, Any]], config: Any,
                  plots: Mapping[str, str], tests: Sequence[Mapping[str, Any]] = ()) -> str:
    lines = [f"# Language-scaling study: {config.name}", ""]
    benches = lareqa_benchmarks(rows, config)
    ranked = ranking_benchmarks(rows, config)
    groups = rows_by_model(rows, config)
    if benches or ranked:
        lines += ["## Answer", ""]
        notes = (getattr(config, "notes", "") or "").strip()
        lines += [("Small-scale run: " if "small-scale" in notes.lower() else "")
                  + "every figure below is a value of `cells.csv` or computed from the per-query results beside "
                  "the cell records; read it with *What this does and does not show* at the end.", ""]
        for model, model_rows in groups:
            if len(groups) > 1:
                lines += [f"### {model}", ""]
            lines += _answer(model_rows, tests, config, model) + _ranking_answer(model_rows, config) + [""]
    lines += ["## Set-up", ""]
    lines += _setup_lines(rows, config)
    if not benches and not ranked:
        lines += ["", "No results yet."]
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
                f"| {t['base_model']} | {t['benchmark'].title} | {t['n_languages']} | {t['setting']} | "
                f"{t['a']} − {t['b']} | {t['difference']:+.4f} | {t['low']:+.4f} … {t['high']:+.4f} | "
                f"{verdict(t)} | {t['mean_a']:.3f} ± {t['sd_a']:.3f} ({t['seeds_a']}) | "
                f"{t['mean_b']:.3f} ± {t['sd_b']:.3f} ({t['seeds_b']}) | {t['queries']} |")
    findings = []
    for model, model_rows in groups:
        per_model = []
        for bench in lareqa_benchmarks(model_rows, config):
            found = _findings(model_rows, bench, config, [t for t in tests if t["base_model"] == model])
            if found:  # a partial grid (one language count so far) has no trend to state
                per_model += [f"#### {bench.title}", "", *found, ""]
        for bench in ranking_benchmarks(model_rows, config):
            found = _ranking_findings(model_rows, bench, config)
            if found:
                per_model += [f"#### {bench.title}", "", *found, ""]
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
        "`null_positive` rows have no positive (no answer sentence when training on sentences), "
        "`no_hard_negative` rows of a mined cell kept no mined negative after the miner's filters, so a mined cell "
        "trains on fewer distinct rows than its in-batch twin (the same steps and batch size).",
        "- Compute is measured on the machine that ran the study, which may have been shared with other "
        "work: training tokens are exact, seconds are indicative only and not portable.",
        "- mAP@20 (XTREME-R) counts only relevant candidates ranked in the top 20; mAP (LAReQA) counts all.",
    ]
    return "\n".join(lines) + "\n"


def _setup_lines(rows: Sequence[Mapping[str, Any]], config: Any) -> list[str]:
    models = base_models_of(config)
    extra = list(getattr(config, "extra_cells", []) or [])
    lines = [
        f"Base model{'s' if len(models) > 1 else ''}: {', '.join(f'`{m}`' for m in models)}. Training languages "
        f"in order: {', '.join(config.language_order)}; never trained on (unseen): "
        f"{', '.join(config.unseen) or 'none'}.",
        f"Main grid: strategies {', '.join(config.strategies)}; language counts {config.language_counts}; "
        f"languages-per-batch caps {config.languages_per_batch}; hybrid alpha "
        f"{[a if a is not None else base_alpha_of(config) for a in (getattr(config, 'alphas', None) or [None])]}; "
        f"seeds {config.seeds}.",
    ]
    if extra:
        lines.append("Extra cells: " + "; ".join(json.dumps(e, default=str) for e in extra) + ".")
    lines.append(f"Training settings (same for every cell, fixed step budget): `{dict(config.train)}`.")
    for spec in getattr(config, "evaluate", []) or []:
        bench = BenchmarkColumns(str(spec.get("benchmark", "")))
        counts = {(r.get(bench.queries), r.get(bench.candidates)) for r in rows
                  if r.get(bench.queries) is not None}
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
    for setting in SETTING_KEYS:
        metric = bench.map(setting)
        groups = {k: v for k, v in group_by_recipe(rows, metric, config).items() if len(v) > 1}
        base = zero_shot_value(rows, metric)
        parts = [f"{label} {_trend(by_n)}" for label, by_n in sorted(groups.items())]
        base_txt = f"; zero-shot base {base:.3f}" if base is not None else ""
        if parts:
            out.append(f"- {setting} mAP: " + "; ".join(parts) + base_txt + ".")
        best_per_n: dict[int, tuple[str, float]] = {}
        for label, by_n in groups.items():
            for n, values in by_n.items():
                m, _ = mean_sd(values)
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
    at20 = {k: v for k, v in group_by_recipe(rows, bench.map_at_20("multilingual"), config).items() if len(v) > 1}
    if at20:
        out.append("- multilingual mAP@20 (XTREME-R): "
                   + "; ".join(f"{label} {_trend(by_n)}" for label, by_n in sorted(at20.items())) + ".")
    metric = bench.rank_distance
    groups = {k: v for k, v in group_by_recipe(rows, metric, config).items() if len(v) > 1}
    if groups:
        parts = [f"{label} {_trend(by_n, 1)}" for label, by_n in sorted(groups.items())]
        out.append("- Rank distance (language bias, lower is better): " + "; ".join(parts) + ".")
    spread = []
    for label, by_n in sorted(group_by_recipe(rows, bench.map("multilingual"), config).items()):
        for n, values in sorted(by_n.items()):
            if len(values) > 1:
                m, sd = mean_sd(values)
                spread.append(f"{label} n={n}: {m:.3f} ± {sd:.3f} over {len(values)} seeds")
    if spread:
        out.append("- Seed spread (multilingual mAP): " + "; ".join(spread) + ".")
    unseen = {k: v for k, v in group_by_recipe(rows, bench.map("multilingual", "unseen"), config).items() if len(v) > 1}
    if unseen:
        parts = [f"{label} {_trend(by_n)}" for label, by_n in sorted(unseen.items())]
        out.append("- Unseen languages, multilingual mAP of their queries: " + "; ".join(parts) + ".")
    return out


def _axes_lines(rows: Sequence[Mapping[str, Any]], config: Any) -> list[str]:
    """The recipes run at one language count only (alpha and cap axes) beside the main recipes there."""
    trained = trained_rows(rows)
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
        benches = lareqa_benchmarks(at_n, config)
        head = "| recipe | seeds | " + " | ".join(
            f"{b.title} mono | {b.title} multi | {b.title} rank dist." for b in benches) + " |"
        lines += [f"At n={n} (mean ± s.d. over seeds where there are several):", "", head,
                  "|---|---|" + "---|" * (3 * len(benches))]
        for label in sorted(recipes, key=lambda v: (v.split(" ")[0], v)):
            cells = []
            for b in benches:
                for metric, digits in (("monolingual_map", 3), ("multilingual_map", 3), ("rank_distance", 1)):
                    values = [float(r[b.column(metric)]) for r in recipes[label] if r.get(b.column(metric)) is not None]
                    if not values:
                        cells.append("–")
                        continue
                    m, sd = mean_sd(values)
                    cells.append(f"{m:.{digits}f}" + (f" ± {sd:.{digits}f}" if len(values) > 1 else ""))
            lines.append(f"| {label} | {len(recipes[label])} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _cells_table(rows: Sequence[Mapping[str, Any]], config: Any) -> list[str]:
    benches = lareqa_benchmarks(rows, config)
    ranked = ranking_benchmarks(rows, config)
    names = " and ".join(b.title for b in benches)
    about = [f"mAP on {names}; *@20* is multilingual mAP@20; *rank* is rank distance."] if benches else []
    about += [f"nDCG@10 and Recall@100 on {b.title} (each language's queries in its own corpus)." for b in ranked]
    lines = ["## All cells", "", " ".join(about), ""]
    head = "| cell | alpha |"
    for b in benches:
        n = b.title
        head += f" {n} mono | {n} cross | {n} multi | {n} multi@20 | {n} multi seen | {n} multi unseen | {n} rank |"
    for b in ranked:
        head += f" {b.title} nDCG@10 | {b.title} R@100 |"
    head += (" train tokens | train s | translation tokens | est. | pairs used | pairs skipped (why) |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(rows, key=lambda r: (str(r.get("base_model", "")), r["n_languages"], r["strategy"],
                                          row_alpha(r, config) or 0.0, row_cap(r) or 0, r["seed"])):
        line = f"| {r['cell']} | {fmt(row_alpha(r, config), 2)} |"
        for b in benches:
            line += (f" {fmt(r.get(b.map('monolingual')))} | {fmt(r.get(b.map('cross-lingual')))}"
                     f" | {fmt(r.get(b.map('multilingual')))} | {fmt(r.get(b.map_at_20('multilingual')))}"
                     f" | {fmt(r.get(b.map('multilingual', 'seen')))} | {fmt(r.get(b.map('multilingual', 'unseen')))}"
                     f" | {fmt(r.get(b.rank_distance), 1)} |")
        for b in ranked:
            line += f" {fmt(r.get(b.ndcg_at_10))} | {fmt(r.get(b.recall_at_100))} |"
        line += (f" {fmt(r.get('train_tokens'))} | {fmt(r.get('train_seconds'), 0)}"
                 f" | {fmt(r.get('translation_tokens'))}"
                 f" | {'yes' if r.get('translation_estimated') in (True, 'true') else 'no'} | "
                 f"{fmt(r.get('train_pairs_used'))} | {_skipped(r)} |")
        lines.append(line)
    return lines


RANKING_METRICS = (("ndcg_at_10", "nDCG@10"), ("recall_at_100", "Recall@100"))


def _ranking_answer(rows: Sequence[Mapping[str, Any]], config: Any) -> list[str]:
    """What each added training language changes on the MIRACL-style benchmarks (nDCG@10, Recall@100)."""
    out: list[str] = []
    strategies = [s for s in (MONO, XY, HYBRID, XX) if any(r["strategy"] == s for r in trained_rows(rows))]
    for bench in ranking_benchmarks(rows, config):
        parts, at_top = [], []
        for attr, label in RANKING_METRICS:
            column = getattr(bench, attr)
            trend = {s: means_by_n(group_by_recipe(rows, column, config).get(s, {})) for s in strategies}
            values = [f"{s} {_signed(v, 4)}" for s in strategies if (v := change_per_language(trend[s])) is not None]
            if values:
                parts.append(f"{label} " + ", ".join(values))
            if attr == "ndcg_at_10":
                for s in strategies:
                    if trend[s]:
                        n = max(trend[s])
                        at_top.append(f"{s} {trend[s][n]:.3f} (n={n})")
        base = zero_shot_value(rows, bench.ndcg_at_10)
        if parts:
            out.append(f"- **{bench.title}, per added training language** (monolingual retrieval in each language's "
                       "own corpus): " + "; ".join(parts) + ".")
        if at_top:
            out.append(f"- **{bench.title} nDCG@10 at the most languages trained on** (seed means): "
                       + ", ".join(at_top) + (f"; zero-shot base {base:.3f}" if base is not None else "") + ".")
    return out


def _ranking_findings(rows: Sequence[Mapping[str, Any]], bench: BenchmarkColumns, config: Any) -> list[str]:
    out: list[str] = []
    for attr, label in RANKING_METRICS:
        column = getattr(bench, attr)
        groups = {k: v for k, v in group_by_recipe(rows, column, config).items() if len(v) > 1}
        base = zero_shot_value(rows, column)
        parts = [f"{recipe} {_trend(by_n)}" for recipe, by_n in sorted(groups.items())]
        if parts:
            out.append(f"- {label}: " + "; ".join(parts)
                       + (f"; zero-shot base {base:.3f}" if base is not None else "") + ".")
    return out


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
    lo, hi = mean_sd(by_n[ns[0]])[0], mean_sd(by_n[ns[-1]])[0]
    if len(ns) == 1:
        return f"{lo:.{digits}f} (n={ns[0]})"
    return f"{lo:.{digits}f} (n={ns[0]}) → {hi:.{digits}f} (n={ns[-1]}), change {hi - lo:+.{digits}f}"
