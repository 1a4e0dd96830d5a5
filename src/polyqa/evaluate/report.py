"""An evaluation result rendered for people: OUT.md, OUT.heatmap.png, the summary line and table,
beside OUT.json (the result itself; see :mod:`polyqa.evaluate.result`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from polyqa import markdown, storage
from polyqa.encoders import resolve_encoder
from polyqa.evaluate.config import output_paths
from polyqa.evaluate.result import mean_or_none


# --------------------------------------------------------------------------- files


def has_language_pairs(result: dict) -> bool:
    """Whether a result scores query x candidate language pairs (LAReQA), not each language alone (MIRACL)."""
    return "cross-lingual" in result["settings"]


def summary_line(result: dict) -> str:
    """The headline numbers of a result, on one line (the CLI prints it, the flow logs it)."""
    s = result["settings"]
    if not has_language_pairs(result):
        m = s["monolingual"]
        return f"{result['benchmark']} nDCG@10 {_fmt(m['nDCG@10'], 4)}  Recall@100 {_fmt(m['Recall@100'], 4)}"
    rd = (result.get("rank_distance") or {}).get("mean")
    return (f"{result['benchmark']} mAP mono {_fmt(s['monolingual']['mAP'], 4)}  "
            f"cross {_fmt(s['cross-lingual']['mAP'], 4)}  multi {_fmt(s['multilingual']['mAP'], 4)}  "
            f"(mAP@20 multi {_fmt(s['multilingual'].get('mAP@20'), 4)})  rank distance {_fmt(rd, 1)}")


def results_table(result: dict) -> list[dict]:
    """One row per setting with its headline metrics (the flow publishes it as a table artifact)."""
    rows = []
    for setting, block in (result.get("settings") or {}).items():
        row = {"setting": setting}
        row.update({k: round(v, 4) if isinstance(v, float) else v for k, v in block.items()
                    if not isinstance(v, (dict, list))})
        rows.append(row)
    rd = (result.get("rank_distance") or {}).get("mean")
    if rd is not None:
        rows.append({"setting": "rank distance (mean, lower is better)", "value": round(rd, 2)})
    # Every row gets every column, in first-seen order: table viewers (Prefect's UI among
    # them) take the columns from the first row and would hide the others.
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return [{key: row.get(key) for key in columns} for row in rows]


def _fmt(v, digits=3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _short(lang: str, result: dict) -> str:
    return result.get("source_codes", {}).get(lang, lang)


def model_label(result: dict) -> str:
    """The model as the user named it: an alias or hub id as given, a local folder by its full path."""
    model = str(result.get("model", ""))
    path = result.get("model_path") or model
    if model != path and resolve_encoder(model) == path and not Path(model).is_dir():
        return model  # an alias (minilm, xlm-r, ...): its name says more than a site-packages path
    return str(Path(path).resolve()) if Path(path).is_dir() else model


def settings_lines(result: dict) -> list[str]:
    """Every option that shaped the result, as markdown list items (the JSON has them too)."""
    filters = result.get("filters") or {}
    model = model_label(result)
    path = result.get("model_path")
    lines = [
        f"- benchmark: `{result['benchmark']}`; data folder: `{result.get('data_dir') or '-'}`",
        f"- model: `{model}`" + (f" (loaded from `{path}`)" if path and path != model else ""),
        "- languages: " + (", ".join(f"`{_short(lang, result)}`" for lang in result.get("languages", []))
                           + ("" if result.get("languages_requested") else " (all of the benchmark)")),
        f"- candidates: `{result.get('candidates')}` ({result.get('candidate_text', 'as is')}); "
        f"query prompt {result.get('query_prompt')!r}, passage prompt {result.get('passage_prompt')!r}",
    ]
    articles = filters.get("articles_file")
    n_titles = filters.get("articles")
    lines.append("- articles file: " + (f"`{articles}`" + (f" ({n_titles} titles)" if n_titles is not None else "")
                                        if articles else "none (every article)"))
    if filters.get("exclude_titles_file"):
        lines.append(f"- excluded titles file: `{filters['exclude_titles_file']}`")
    lines.append(f"- max questions: {filters.get('max_questions') or 'all'}")
    if filters.get("split"):
        lines.append(f"- split: `{filters['split']}`")
    lines.append(f"- device `{result.get('device')}`, batch size {result.get('batch_size')}")
    return lines


def render_markdown(result: dict) -> str:
    lines = [f"# {result['benchmark']} zero-shot retrieval: `{model_label(result)}`", "", "## Settings", ""]
    lines += settings_lines(result)
    lines.append("")
    counts = result.get("counts", {})
    lines.append(f"- queries {counts.get('queries')}, candidates {counts.get('candidates')}, "
                 f"quarantined rows {counts.get('quarantined')}")
    timings = result.get("timings", {})
    lines.append(f"- encode {timings.get('encode_seconds', 0):.1f} s, scoring {timings.get('scoring_seconds', 0):.2f} s")
    lines.append("")
    settings = result["settings"]
    langs_ = result["languages"]
    if not has_language_pairs(result):
        mono = settings["monolingual"]
        rows = [[_short(lang, result), _fmt(v["nDCG@10"]), _fmt(v["Recall@100"]), v["queries"]]
                for lang, v in ((lang, mono["per_language"][lang]) for lang in langs_)]
        rows.append(["**mean**", f"**{_fmt(mono['nDCG@10'])}**", f"**{_fmt(mono['Recall@100'])}**", mono["queries"]])
        lines += markdown.table(["language", "nDCG@10", "Recall@100", "queries"], rows)
        return "\n".join(lines) + "\n"
    mono, cross, multi = settings["monolingual"], settings["cross-lingual"], settings["multilingual"]
    rd = result["rank_distance"]
    lines += ["## Summary (mAP, macro-averaged)", "",
              "mAP@20 is XTREME-R's variant: only relevant candidates ranked within the top 20 count.", "",
              ]
    lines += markdown.table(["setting", "mAP", "mAP@20", "R@1", "R@10"],
                            ([name, _fmt(s["mAP"]), _fmt(s.get("mAP@20")), _fmt(s.get("R@1")), _fmt(s.get("R@10"))]
                             for name, s in (("monolingual", mono), ("cross-lingual", cross), ("multilingual", multi))))
    lines += ["", f"Rank distance (multilingual pool, lower is better): **{_fmt(rd['mean'], 1)}**", ""]
    lines += ["## Per query language", "",
              ]
    lines += markdown.table(
        ["language", "mono mAP", "mono R@1", "mono R@10", "multi mAP", "multi R@10", "cross mAP (as query)",
         "rank distance"],
        ([_short(lang, result), _fmt(mono["per_language"][lang]), _fmt(mono["recall_per_language"]["R@1"][lang]),
          _fmt(mono["recall_per_language"]["R@10"][lang]), _fmt(multi["per_language"][lang]),
          _fmt(multi["recall_per_language"]["R@10"][lang]), _fmt(mean_or_none(cross["per_pair"][lang].values())),
          _fmt(rd["per_language"][lang], 1)] for lang in langs_))
    lines += ["", "## Cross-lingual mAP (rows: query language, columns: candidate language; diagonal: monolingual)", ""]
    lines += markdown.table(
        ["query \\ candidates", *(_short(c, result) for c in langs_)],
        ([_short(q, result), *(_fmt(mono["per_language"][q]) if c == q else _fmt(cross["per_pair"][q][c])
                               for c in langs_)] for q in langs_))
    su = result.get("seen_unseen")
    if su:
        lines += ["", "## Seen vs unseen training languages", "",
                  f"seen: {', '.join(su['seen']) or '–'}; unseen: {', '.join(su['unseen']) or '–'}", "",
                  ]
        lines += markdown.table(["metric", "seen", "unseen"],
                                ([name, _fmt(su[name]["seen"]), _fmt(su[name]["unseen"])]
                                 for name in ("monolingual", "multilingual", "rank_distance")))
        lines.append("")
        lines += markdown.table(["cross-lingual pairs", "mAP"], ([k, _fmt(v)] for k, v in su["cross-lingual"].items()))
    return "\n".join(lines) + "\n"


def cross_matrix(result: dict) -> np.ndarray:
    """Query language x candidate language mAP (diagonal = monolingual), NaN where undefined."""
    langs_ = result["languages"]
    mono = result["settings"]["monolingual"]["per_language"]
    cross = result["settings"]["cross-lingual"]["per_pair"]
    mat = np.full((len(langs_), len(langs_)), np.nan)
    for i, q in enumerate(langs_):
        for j, c in enumerate(langs_):
            v = mono[q] if q == c else cross[q][c]
            mat[i, j] = np.nan if v is None else v
    return mat


def heatmap_title(result: dict, width_chars: int) -> str:
    """The heatmap's title, wrapped to ``width_chars``: benchmark, what the cells are, and the model."""
    import textwrap

    head = f"{result['benchmark']} mAP, query x candidate language (diagonal: monolingual)"
    model = f"model: {model_label(result)}"
    # A path has no spaces: break it at its slashes rather than anywhere.
    model = model.replace("/", "/\u200b")
    lines = textwrap.wrap(head, width_chars) + textwrap.wrap(model, width_chars, break_on_hyphens=False)
    return "\n".join(line.replace("\u200b", "") for line in lines)


def heatmap_figure(result: dict):
    """The cross-lingual mAP heatmap as a matplotlib figure (title wrapped to fit the figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mat = cross_matrix(result)
    labels = [_short(lang, result) for lang in result["languages"]]
    size = 1.0 + 0.55 * len(labels)
    width = max(size + 1.5, 4.5)
    # Constrained layout keeps room for the figure title above the axes, however many lines it wraps to.
    fig, ax = plt.subplots(figsize=(width, size + 0.8), layout="constrained")
    im = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="viridis")
    long_labels = max(map(len, labels), default=0) > 4  # NLLB codes (deu_Latn) collide when upright
    ax.set_xticks(range(len(labels)), labels, rotation=45 if long_labels else 0,
                  ha="right" if long_labels else "center")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("candidate language")
    ax.set_ylabel("query language")
    fontsize = 8
    # Centred on the figure (not the axes, which the colour bar pushes left). Characters per line: the
    # figure's width in points over a generous average glyph width, so no line runs off the edge.
    fig.suptitle(heatmap_title(result, max(20, int(width * 72 / (0.62 * fontsize)) - 4)), fontsize=fontsize)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            if not np.isnan(mat[i, j]):
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if mat[i, j] < 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig


def plot_heatmap(result: dict, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    fig = heatmap_figure(result)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(result: dict, output: str | Path) -> dict[str, Path]:
    paths = output_paths(output)
    storage.atomic_write_text(paths["json"], json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    storage.atomic_write_text(paths["md"], render_markdown(result))
    if has_language_pairs(result):
        plot_heatmap(result, paths["heatmap"])
    else:
        paths.pop("heatmap")
    return paths
