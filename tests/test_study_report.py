"""REPORT.md of a study on a synthetic results set whose answer is known: it opens with the answer,
every number of which comes from cells.csv or the per-query files, and says "no difference" where the
paired bootstrap interval crosses zero."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from polyqa.study import StudyConfig, plan_cells
from polyqa.study.analysis import flattening, pareto_front
from polyqa.study.grid import cell_alpha
from polyqa.study.job import write_results
from polyqa.study.results import per_query_path, write_per_query

ORDER = ["en", "de", "es", "ru", "ar", "zh", "hi", "tr", "th"]
# Multilingual mAP by language count: x-y gains fast up to 3 languages and little after.
MULTI = {"x-x-mono": {1: 0.052, 2: 0.054, 3: 0.056, 5: 0.060, 9: 0.068},
         "x-y": {2: 0.100, 3: 0.150, 5: 0.160, 9: 0.165},
         "hybrid": {2: 0.080, 3: 0.120, 5: 0.130, 9: 0.135}}
MONO = {"x-x-mono": 0.40, "x-y": 0.35, "hybrid": 0.42}


def study_config(tmp_path: Path) -> StudyConfig:
    return StudyConfig(
        name="synthetic", results_dir=str(tmp_path / "results"), work_dir=str(tmp_path / "work"), corpus="c",
        language_order=ORDER, unseen=["el", "vi"], language_counts=[1, 2, 3, 5, 9],
        strategies=["x-x-mono", "x-y", "hybrid"], train={"alpha": 0.5, "max_steps": 80},
        extra_cells=[{"n_languages": [2, 9], "strategy": ["x-x-mono", "x-y", "hybrid"], "seeds": [1, 2]},
                     {"n_languages": 9, "strategy": "hybrid", "alpha": [0.25, 0.75]},
                     {"n_languages": 9, "strategy": ["hybrid", "x-y"], "languages_per_batch": [2, 4]}],
        evaluate=[{"benchmark": "xquad-r", "data_dir": "x"},
                  {"benchmark": "mlqa-r", "data_dir": "m", "sample_articles": 3}],
        notes="This is a small-scale run on synthetic numbers.",
    )


def metrics(strategy: str, n: int, alpha: float | None, cap: int | None, seed: int) -> tuple[float, float, float]:
    """(monolingual mAP, multilingual mAP, rank distance) of a synthetic cell."""
    if strategy == "zero-shot":
        return 0.37, 0.05, 2780.0
    multi = MULTI[strategy][n] + 0.001 * seed
    mono = MONO[strategy] + (0.01 * n if strategy == "x-x-mono" else 0.0) + 0.001 * seed
    if alpha == 0.25:  # this mix beats every other recipe on both
        mono, multi = 0.52, 0.17
    elif alpha == 0.75:
        mono, multi = 0.45, 0.11
    if cap is not None:
        multi -= 0.01 * (5 - cap)
    rank = {"x-x-mono": 2800 - 5 * n, "x-y": 2500 - 15 * n, "hybrid": 2600 - 3 * n}[strategy]
    return mono, multi, float(rank)


def per_query(strategy: str, seed: int, rng_seed: int) -> dict:
    """200 queries (2 languages x 100): multilingual AP is x-y = hybrid + 0.1 = x-x-mono + 0.15;
    monolingual AP is the same for every strategy up to seed noise."""
    base = np.random.default_rng(0)
    u_multi, u_mono = base.uniform(0.1, 0.5, 200), base.uniform(0.2, 0.7, 200)
    noise = np.random.default_rng(rng_seed)
    shift = {"x-x-mono": -0.05, "x-y": 0.1, "hybrid": 0.0, "zero-shot": -0.1}[strategy]
    multi = u_multi + shift + noise.normal(0, 0.01, 200)
    mono = u_mono + noise.normal(0, 0.02, 200)
    langs = ["eng_Latn"] * 100 + ["deu_Latn"] * 100
    qids = [f"q{i % 100}" for i in range(200)]
    return {"setting": ["monolingual"] * 200 + ["multilingual"] * 200, "language": langs * 2, "qid": qids * 2,
            "ap": list(mono) + list(multi), "ap_at_20": list(mono) + list(multi)}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("report")
    config = study_config(tmp_path)
    cells, skipped = plan_cells(config)
    rows = []
    cells_dir = Path(config.results_dir) / "cells"
    cells_dir.mkdir(parents=True)
    for i, cell in enumerate(cells):
        alpha = cell_alpha(config, cell)
        row = {"cell": cell.label, "key": f"k{i:03d}", "n_languages": cell.n_languages, "strategy": cell.strategy,
               "alpha": alpha, "languages_per_batch": cell.languages_per_batch, "seed": cell.seed,
               "languages": ",".join(cell.languages), "base_model": "minilm",
               "translation_tokens": 45_000 * max(cell.n_languages - 1, 0), "translation_estimated": True,
               "train_tokens": 140_000 + 12_000 * (cell.n_languages - 1) if cell.n_languages else 0,
               "train_seconds": 200.0, "train_pairs_used": 100, "train_pairs_skipped": 0}
        for bench, offset in (("xquad_r", 0.0), ("mlqa_r", -0.02)):
            mono, multi, rank = metrics(cell.strategy, cell.n_languages, cell.alpha, cell.languages_per_batch,
                                        cell.seed)
            row.update({f"{bench}_monolingual_map": mono + offset, f"{bench}_multilingual_map": multi + offset,
                        f"{bench}_multilingual_map_at_20": multi + offset + 0.01,
                        f"{bench}_cross_lingual_map": multi + 0.03, f"{bench}_rank_distance": rank,
                        f"{bench}_queries": 200, f"{bench}_candidates": 900})
        rows.append(row)
        record = cells_dir / f"{cell.label}-{row['key']}.json"
        write_per_query(per_query_path(record), {b: per_query(cell.strategy, cell.seed, 100 * i + k)
                                                 for k, b in enumerate(("xquad-r", "mlqa-r"))})
    write_results(config, rows, skipped)
    return Path(config.results_dir)


def table(results: Path) -> list[dict]:
    with open(results / "cells.csv") as fh:
        return list(csv.DictReader(fh))


def test_cells_csv_has_alpha_beside_the_cap_and_both_benchmarks(synthetic):
    header = (synthetic / "cells.csv").read_text().splitlines()[0].replace('"', "").split(",")
    assert header[:7] == ["cell", "base_model", "n_languages", "strategy", "alpha", "languages_per_batch", "seed"]
    for column in ("mlqa_r_multilingual_map", "mlqa_r_monolingual_map", "mlqa_r_rank_distance",
                   "xquad_r_multilingual_map_at_20", "mlqa_r_multilingual_map_at_20"):
        assert column in header
    rows = {r["cell"]: r for r in table(synthetic)}
    assert rows["n9-hybrid-a0.25-capall-seed0"]["alpha"] == "0.25"
    assert rows["n9-hybrid-capall-seed2"]["alpha"] == "0.5"
    assert rows["n9-x-y-capall-seed0"]["alpha"] == ""  # alpha means nothing for x-y


def test_report_opens_with_the_answer_and_its_numbers_come_from_the_table(synthetic):
    report = (synthetic / "REPORT.md").read_text()
    headings = re.findall(r"^## .*$", report, flags=re.M)
    assert headings[0] == "## Answer"
    answer = report.split("## Answer", 1)[1].split("\n## ", 1)[0]
    assert answer.lstrip().startswith("Small-scale run")
    rows = table(synthetic)

    def mean(strategy, n, column):
        values = [float(r[column]) for r in rows if r["strategy"] == strategy and int(r["n_languages"]) == n
                  and r["languages_per_batch"] == "" and r["alpha"] in ("", "0.5")]
        return sum(values) / len(values)

    # Change per added language, x-y, from 2 to 9 languages (seed means at 2 and at 9).
    slope = (mean("x-y", 9, "xquad_r_multilingual_map") - mean("x-y", 2, "xquad_r_multilingual_map")) / 7
    assert f"x-y {slope:+.4f}" in answer
    slope = (mean("x-x-mono", 9, "mlqa_r_monolingual_map") - mean("x-x-mono", 1, "mlqa_r_monolingual_map")) / 8
    assert f"x-x-mono {slope:+.4f}" in answer
    # Returns: x-y gains +0.05 per language from 2 to 3, at most +0.005 after.
    assert "x-y flattens after n=3" in answer
    # Cost per added language, from the translation and training token columns.
    assert "45,000 translation tokens" in answer and "+12,000 training tokens per cell" in answer
    # Trade-off: the alpha 0.25 mix is on the frontier.
    assert "hybrid is on it: hybrid a=0.25 n=9" in answer
    # ... and the default hybrid at 9 languages lies above the straight line from x-y to x-x-mono.
    (m_mono, m_multi), (y_mono, y_multi), (h_mono, h_multi) = (
        (mean(s, 9, "xquad_r_monolingual_map"), mean(s, 9, "xquad_r_multilingual_map"))
        for s in ("x-x-mono", "x-y", "hybrid"))
    line = y_multi + (m_multi - y_multi) * (h_mono - y_mono) / (m_mono - y_mono)
    assert h_multi > line
    assert f"hybrid n=9 above it by {h_multi - line:+.3f} ({h_multi:.3f} vs {line:.3f})" in answer
    assert "hybrid a=0.25 n=9: monolingual 0.520 outside" in answer
    # Where hybrid's trade-off is best: the recipe farthest above that line, by its own gain.
    line = next(line for line in answer.splitlines() if line.startswith("- **Trade-off, XQuAD-R**"))
    gains = [float(g) for g in re.findall(r"n=\d above it by ([+-]\d\.\d{3})", line)]
    best = re.search(r"farthest above it: (hybrid[^();,]* n=\d) \(([+-]\d\.\d{3})\)", line)
    assert best and float(best.group(2)) == max(gains) and f"{best.group(1)} above it by {best.group(2)}" in line
    # Significance at 9 languages, on both benchmarks.
    for bench in ("XQuAD-R", "MLQA-R"):
        line = next(line for line in answer.splitlines() if line.startswith(f"- **Significance at n=9, {bench}**"))
        assert "hybrid 3 seeds" in line and "x-y 3 seeds" in line
        assert re.search(r"hybrid − x-y multilingual mAP -0\.\d{3} \(95% CI -0\.\d{3} … -0\.\d{3}\): \*\*x-y better\*\*",
                         line), line
        assert re.search(r"hybrid − x-x-mono multilingual mAP \+0\.0\d\d .*?: \*\*hybrid better\*\*", line), line
        assert re.search(r"hybrid − x-x-mono monolingual mAP [-+]0\.00\d .*?: \*\*no difference\*\*", line), line
    assert "Language bias at n=9" in answer and "x-y 2365.0" in answer


def test_significance_table_and_findings_say_no_difference_where_the_interval_crosses_zero(synthetic):
    report = (synthetic / "REPORT.md").read_text()
    section = report.split("## Significance", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| minilm |")]
    # benchmarks x language counts where both sides ran (2, 3, 5, 9) x comparisons x settings
    assert len(rows) == 2 * 4 * 2 * 2
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        low, high = (float(v) for v in cells[6].split(" … "))
        assert (cells[7] == "no difference") == (low <= 0 <= high)
        assert cells[10] == "200"  # 2 languages x 100 queries, averaged over seeds
    findings = report.split("## Findings", 1)[1]
    assert "Bootstrap: n=2: hybrid vs x-x-mono no difference" in findings

    # The difference, recomputed from the per-query files alone: AP averaged over each side's three
    # seeds per query, then the mean per language, then the mean over languages.
    import pandas as pd

    records = {r["cell"]: r["key"] for r in table(synthetic)}

    def side(strategy):
        frames = [pd.read_parquet(synthetic / "cells" / f"n9-{strategy}-capall-seed{s}-{records[f'n9-{strategy}-capall-seed{s}']}"
                                  ".queries.parquet") for s in (0, 1, 2)]
        data = pd.concat(frames)
        data = data[(data.benchmark == "xquad-r") & (data.setting == "multilingual")]
        return data.groupby(["language", "qid"]).ap.mean()

    diff = (side("hybrid") - side("x-y")).groupby(level="language").mean().mean()
    line = next(line for line in rows if "| XQuAD-R | 9 | multilingual | hybrid − x-y |" in line)
    assert f"| {diff:+.4f} |" in line


def test_axes_table_and_side_by_side_plots(synthetic):
    report = (synthetic / "REPORT.md").read_text()
    axes = report.split("## Mixing weight and languages per batch", 1)[1].split("\n## ", 1)[0]
    assert "| hybrid a=0.25 | 1 | 0.520 | 0.170 |" in axes
    assert "| x-y cap 2 | 1 |" in axes and "| hybrid | 3 |" in axes
    assert "| cell | alpha | XQuAD-R mono |" in report and "MLQA-R multi@20" in report
    for png in ("map_vs_languages.png", "rank_distance_vs_languages.png", "map_vs_compute.png", "tradeoff.png"):
        assert (synthetic / png).stat().st_size > 5000
        assert f"]({png})" in report


def test_flattening_and_frontier_by_hand():
    assert flattening({2: 0.10, 3: 0.15, 5: 0.16, 9: 0.165}) == 3
    assert flattening({1: 0.1, 2: 0.2, 3: 0.3}) is None  # steady gains
    assert flattening({1: 0.3, 2: 0.2, 3: 0.25}) is None  # the first step lost
    assert flattening({1: 0.1, 2: 0.2, 4: 0.22, 8: 0.5}) is None  # picks up again (+0.07 per language)
    assert pareto_front([(0.5, 0.1), (0.4, 0.2), (0.3, 0.1), (0.45, 0.15), (0.5, 0.05)]) == [
        (0.4, 0.2), (0.45, 0.15), (0.5, 0.1)]


def test_several_base_models_get_their_own_answer_and_plots(tmp_path):
    config = StudyConfig(name="two", results_dir=str(tmp_path), work_dir=str(tmp_path / "w"), corpus="c",
                         base_model=["xlm-r", "labse"], language_order=["en", "de", "es"], unseen=[],
                         language_counts=[1, 2, 3], strategies=["x-x-mono", "x-y", "hybrid"],
                         evaluate=[{"benchmark": "xquad-r", "data_dir": "x"}])
    cells, skipped = plan_cells(config)
    rows = []
    for i, cell in enumerate(cells):
        gain = 0.01 if cell.base_model == "labse" else 0.0
        mono, multi, rank = metrics(cell.strategy, cell.n_languages, None, None, 0)
        rows.append({"cell": cell.label, "key": f"k{i}", "base_model": cell.base_model, "n_languages": cell.n_languages,
                     "strategy": cell.strategy, "languages_per_batch": None, "seed": 0,
                     "xquad_r_monolingual_map": mono + gain, "xquad_r_multilingual_map": multi + gain,
                     "xquad_r_rank_distance": rank})
    write_results(config, rows, skipped)
    report = (tmp_path / "REPORT.md").read_text()
    answer = report.split("## Answer", 1)[1].split("\n## ", 1)[0]
    assert answer.index("### xlm-r") < answer.index("### labse")
    assert "**Significance**: not computed" in answer  # no per-query files here
    for model in ("xlm-r", "labse"):
        for stem in ("map_vs_languages", "tradeoff"):
            assert (tmp_path / f"{stem}-{model}.png").stat().st_size > 5000
    assert {r["base_model"] for r in table(tmp_path)} == {"xlm-r", "labse"}


def test_miracl_results_reach_the_report_beside_the_lareqa_benchmarks(tmp_path):
    """The report takes its benchmarks from the config: MIRACL's nDCG@10 and Recall@100 (no mAP,
    no language pairs) get their answer lines, findings, table columns and plot."""
    config = StudyConfig(
        name="with-miracl", results_dir=str(tmp_path / "results"), work_dir=str(tmp_path / "work"), corpus="c",
        language_order=["en", "de", "es"], language_counts=[1, 2, 3], strategies=["x-x-mono", "x-y"],
        evaluate=[{"benchmark": "xquad-r", "data_dir": "x"}, {"benchmark": "miracl", "data_dir": "m"}])
    cells, skipped = plan_cells(config)
    ndcg = {"zero-shot": {0: 0.30}, "x-x-mono": {1: 0.40, 2: 0.42, 3: 0.44}, "x-y": {2: 0.45, 3: 0.51}}
    rows = []
    for i, cell in enumerate(cells):
        value = ndcg[cell.strategy][cell.n_languages]
        rows.append({"cell": cell.label, "key": f"k{i}", "n_languages": cell.n_languages, "strategy": cell.strategy,
                     "alpha": None, "languages_per_batch": None, "seed": 0, "base_model": "minilm",
                     "languages": ",".join(cell.languages), "train_tokens": 1000 * cell.n_languages,
                     "xquad_r_monolingual_map": 0.3, "xquad_r_multilingual_map": 0.1 + 0.01 * cell.n_languages,
                     "miracl_ndcg10": value, "miracl_recall100": value + 0.3})
    Path(config.results_dir).mkdir(parents=True)
    write_results(config, rows, skipped)
    results = Path(config.results_dir)
    report = (results / "REPORT.md").read_text()
    answer = report.split("## Answer", 1)[1].split("\n## ", 1)[0]
    # x-y from n=2 to n=3: +0.06 nDCG@10 per added language; x-x-mono from 1 to 3: +0.02
    assert "**MIRACL, per added training language**" in answer
    assert "nDCG@10 x-x-mono +0.0200, x-y +0.0600" in answer and "Recall@100 x-x-mono +0.0200" in answer
    assert "x-y 0.510 (n=3)" in answer and "zero-shot base 0.300" in answer
    findings = report.split("## Findings", 1)[1]
    assert "#### XQuAD-R" in findings and "#### MIRACL" in findings
    assert "- nDCG@10: x-x-mono 0.400 (n=1) → 0.440 (n=3), change +0.040; x-y 0.450 (n=2) → 0.510 (n=3)" in findings
    header = next(line for line in report.splitlines() if line.startswith("| cell | alpha |"))
    assert "MIRACL nDCG@10 | MIRACL R@100" in header
    assert "| n3-x-y-capall-seed0 |" in report and "| 0.510 | 0.810 |" in report
    assert (results / "ranking_vs_languages.png").stat().st_size > 1000
    assert "miracl_ndcg10" in (results / "cells.csv").read_text().splitlines()[0]


def test_metric_columns_are_named_once_for_the_cells_and_the_report():
    from polyqa.study.results import BenchmarkColumns, metric_columns

    lareqa = {"settings": {"monolingual": {"mAP": 0.5, "R@1": 0.2, "R@10": 0.8,
                                           "per_language": {"eng_Latn": 0.6, "ell_Grek": 0.4}},
                           "cross-lingual": {"mAP": 0.3, "per_pair": {"eng_Latn": {"ell_Grek": 0.2},
                                                                      "ell_Grek": {"eng_Latn": 0.4}}},
                           "multilingual": {"mAP": 0.25, "per_language": {"eng_Latn": 0.3, "ell_Grek": 0.2}}},
              "rank_distance": {"mean": 7.0}, "counts": {"queries": 4, "candidates": 6}}
    row = metric_columns("xquad-r", lareqa, seen={"eng_Latn"}, unseen={"ell_Grek"})
    cols = BenchmarkColumns("xquad-r")
    assert cols.title == "XQuAD-R" and cols.map("cross-lingual", "seen") == "xquad_r_cross_lingual_map_seen"
    assert row[cols.map("monolingual")] == 0.5 and row[cols.recall("monolingual", 10)] == 0.8
    assert row[cols.map("monolingual", "unseen")] == pytest.approx(0.4)
    assert row[cols.map("cross-lingual", "seen")] is None  # no pair has both sides trained on
    assert row[cols.map("cross-lingual", "unseen")] == pytest.approx(0.3)
    assert (row[cols.rank_distance], row[cols.queries], row[cols.candidates]) == (7.0, 4, 6)
    miracl = {"settings": {"monolingual": {"nDCG@10": 0.41, "Recall@100": 0.77, "per_language": {}}}}
    assert metric_columns("miracl", miracl, set(), set()) == {"miracl_ndcg10": 0.41, "miracl_recall100": 0.77}
    assert BenchmarkColumns("miracl").title == "MIRACL"
