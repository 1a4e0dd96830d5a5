"""One study run as a job: prepared once (split, corpus, negatives, grid), then cell by cell."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyqa import paths, storage
from polyqa.splits import write_titles
from polyqa.batching.pairs import MINED
from polyqa.corpus.manifest import Manifest
from polyqa.locking import OutputLock
from polyqa.study.articles import article_split, sample_articles
from polyqa.study.cell import corpus_fingerprint, prepare_corpus, run_cell
from polyqa.study.config import StudyConfig, miner_settings
from polyqa.study.grid import Cell, cell_key, plan_cells, train_key
from polyqa.errors import ConfigError
from polyqa.study.results import CELLS_DIR, ID_COLUMNS, cell_record_path, load_per_query, plain_value, read_cell_record

log = logging.getLogger(__name__)

NEGATIVES_DIR = "negatives"  # in work_dir: the negatives mined on the study corpus


@dataclass
class StudyPlan:
    """Everything cells need, prepared once: corpus, articles evaluated, the grid and each cell's keys."""

    config: StudyConfig
    corpus_dir: Path
    manifest: Manifest
    eval_titles: dict[int, Path]  # config.evaluate index -> titles file (held-out split or sample)
    cells: list[Cell]
    keys: list[str]
    train_keys: list[str]
    skipped: list[dict[str, Any]]
    negatives_dir: Path | None = None  # the negatives mined for cells with hard_negatives: mined

    def summary_lines(self) -> list[str]:
        """What the cells train and evaluate on, as Markdown list items (the flow's artifact)."""
        done = sum(1 for i in range(len(self.cells)) if self.finished(i) is not None)
        lines = [f"- corpus: `{self.corpus_dir}` ({self.manifest.get('records')} questions per language; "
                 f"{', '.join(self.manifest.languages)})",
                 f"- cells: {len(self.cells)} ({done} finished), {len(self.skipped)} combinations left out"]
        for i, path in sorted(self.eval_titles.items()):
            lines.append(f"- `{self.config.evaluate[i]['benchmark']}` articles: `{path}`")
        if self.negatives_dir is not None:
            lines.append(f"- mined negatives: `{self.negatives_dir}`")
        return lines

    def finished(self, i: int) -> dict[str, Any] | None:
        return read_cell_record(cell_record_path(self.config, self.cells[i], self.keys[i]))


def prepare_eval_titles(config: StudyConfig, results_dir: Path, heldout_file: Path | None) -> dict[int, Path]:
    """Per evaluated benchmark, the titles file of its articles: the held-out split, or a seeded
    article-level sample written to results_dir (so the report and a rerun name the same articles)."""
    files: dict[int, Path] = {}
    for i, spec in enumerate(config.evaluate):
        if spec.get("held_out") and heldout_file is not None:
            files[i] = heldout_file
        elif spec.get("sample_articles") and spec.get("data_dir") is not None:
            n, seed = int(spec["sample_articles"]), int(spec.get("sample_seed", 0))
            titles, total = sample_articles(paths.expand(spec["data_dir"]), n, seed)
            path = results_dir / f"{spec['benchmark']}-sample-articles.txt"
            write_titles(path, titles, header=f"{spec['benchmark']}: {n} of {total} articles drawn with seed {seed}; "
                                              f"their titles in every language ({len(titles)})")
            files[i] = path
    return files


def prepare_study(config: StudyConfig) -> StudyPlan:
    """Write the article split and samples, build (or reuse) the training corpus, plan and key the cells."""
    results_dir = Path(paths.expand(config.results_dir))
    results_dir.mkdir(parents=True, exist_ok=True)
    Path(paths.expand(config.work_dir)).mkdir(parents=True, exist_ok=True)
    heldout_file = None
    train_titles = None
    if config.split:
        train_titles, heldout = article_split(
            paths.expand(config.split["data_dir"]), float(config.split.get("heldout_fraction", 0.25)),
            int(config.split.get("seed", 0)),
        )
        heldout_file = results_dir / "heldout_articles.txt"
        write_titles(heldout_file, heldout)
        write_titles(results_dir / "train_articles.txt", train_titles)
    eval_titles = prepare_eval_titles(config, results_dir, heldout_file)
    corpus_dir, manifest = prepare_corpus(config, train_titles)
    corpus_fp = corpus_fingerprint(corpus_dir, manifest)
    cells, skipped = plan_cells(config)
    keys = [cell_key(config, cell, corpus_fp) for cell in cells]
    train_keys = [train_key(config, cell, corpus_fp) for cell in cells]
    negatives_dir = None
    if any(cell.hard_negatives == MINED for cell in cells):
        negatives_dir = prepare_negatives(config, corpus_dir, cells)
    return StudyPlan(config, corpus_dir, manifest, eval_titles, cells, keys, train_keys, skipped, negatives_dir)


def prepare_negatives(config: StudyConfig, corpus_dir: Path, cells: Iterable[Cell]) -> Path:
    """Mine (or reuse) negatives on the study corpus for the languages mined cells train on."""
    from polyqa.export.mining import mine_negatives

    folder = Path(paths.expand(config.work_dir)) / NEGATIVES_DIR
    languages = sorted({lang for cell in cells if cell.hard_negatives == MINED for lang in cell.languages})
    mine_negatives(corpus_dir, folder, miner_settings(config), languages=languages)
    return folder


class StudyJob:
    """One study run: prepared once (split, corpus, negatives, grid and keys), then its pending cells one by one.

    ``polyqa study`` and the ``language-scaling`` flow both drive the job: :meth:`prepare`
    (the flow runs it as a task with retries), then :meth:`run`, to which the flow passes an
    ``execute`` that runs each cell as a Prefect task.
    """

    def __init__(self, config: StudyConfig, only_cells: Iterable[str] | None = None) -> None:
        self.config = config
        self.wanted = set(only_cells) if only_cells else None
        self._plan: StudyPlan | None = None

    def prepare(self) -> StudyPlan:
        """Write the split files, build (or reuse) the corpus, mine negatives when cells need them, key the
        cells. Resumable: a rerun reuses the corpus and negatives that are complete."""
        # One writer per results folder: preparing writes the split files, running writes cells and the report.
        with self.lock():
            return self._prepare()

    def _prepare(self) -> StudyPlan:
        plan = prepare_study(self.config)
        unknown = sorted(self.wanted - {c.label for c in plan.cells}) if self.wanted else []
        if unknown:
            raise ConfigError(f"study {self.config.name}: no cells named {unknown}; see `polyqa study --plan`")
        self._plan = plan
        return plan

    @property
    def plan(self) -> StudyPlan:
        return self._plan if self._plan is not None else self.prepare()

    @property
    def cells(self) -> list[Cell]:
        return self.plan.cells

    def pending(self) -> list[int]:
        """Indices of the cells this run trains and evaluates (not finished, and asked for)."""
        return [i for i, cell in enumerate(self.plan.cells)
                if self.plan.finished(i) is None and (self.wanted is None or cell.label in self.wanted)]

    def run_cell(self, i: int) -> dict[str, Any]:
        """Train and evaluate cell ``i`` (or return its record when it finished meanwhile)."""
        plan = self.plan
        return plan.finished(i) or run_cell(plan.config, plan.cells[i], plan.corpus_dir, plan.manifest,
                                            plan.eval_titles, plan.keys[i], plan.train_keys[i],
                                            plan.negatives_dir)

    def report_path(self) -> Path:
        return Path(paths.expand(self.config.results_dir)) / "REPORT.md"

    def finish(self) -> list[dict[str, Any]]:
        """Every finished cell's row, in grid order, written as the table, plots and report."""
        rows = [row for i in range(len(self.plan.cells)) if (row := self.plan.finished(i)) is not None]
        write_results(self.config, rows, self.plan.skipped)
        return rows

    def lock(self) -> OutputLock:
        """The results folder's lock; a second study on it is refused, naming the holder."""
        return OutputLock(paths.expand(self.config.results_dir), "polyqa study")

    def run(self, execute: Callable[[int], Any] | None = None,
            progress: Callable[[str], None] = log.info) -> list[dict[str, Any]]:
        """The cell loop: every pending cell through ``execute`` (default: in this process), then finish."""
        with self.lock():
            if self._plan is None:
                self._prepare()
            return self._run(execute, progress)

    def _run(self, execute: Callable[[int], Any] | None,
             progress: Callable[[str], None]) -> list[dict[str, Any]]:
        execute = execute or self.run_cell
        todo = self.pending()
        done = len(self.plan.cells) - len(todo)
        progress(f"study {self.config.name}: {len(self.plan.cells)} cells, {done} finished, {len(todo)} to run")
        # One cell at a time: each trains a model that uses every core.
        for n, i in enumerate(todo, 1):
            progress(f"[{n}/{len(todo)}] {self.plan.cells[i].label}: training and evaluating")
            execute(i)
        return self.finish()


def write_results(config: StudyConfig, rows: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from polyqa.study.analysis import significance
    from polyqa.study.plots import plot_study
    from polyqa.study.report import render_report

    results_dir = Path(paths.expand(config.results_dir))
    if not rows:
        return
    present = {k for row in rows for k in row}
    columns = [c for c in ID_COLUMNS if c in present] + sorted(present - set(ID_COLUMNS))
    table = pa.Table.from_pylist([{c: plain_value(row.get(c)) for c in columns} for row in rows])
    pq.write_table(table, results_dir / "cells.parquet")
    pacsv.write_csv(table, results_dir / "cells.csv")
    per_query = load_per_query(results_dir / CELLS_DIR, rows)
    tests = significance(rows, per_query, config)
    plots = plot_study(rows, config, results_dir)
    storage.atomic_write_text(results_dir / "REPORT.md", render_report(rows, skipped, config, plots, tests))
