"""The language-scaling study: how does zero-shot retrieval change as training
batches span more languages, and what does each step cost?

A study is a grid of cells: (base model, number of training languages, batch
strategy, hybrid mixing weight alpha, languages-per-batch cap, seed). Every cell
trains the same base model for the same number of steps (so cells are
comparable) on the first N languages of a configured order, then evaluates
zero-shot on the configured benchmarks, keeping languages seen in training apart
from unseen ones. The main grid is a cross product; ``extra_cells`` add selected
cells (more seeds, other alphas or caps) without multiplying the whole grid.

Caching, in two levels:

- training: the model of a cell is kept in ``work_dir/models/<label>-<train key>``,
  keyed by everything that determines training (model, languages, strategy,
  alpha, cap, seed, training settings, split, corpus content);
- evaluation: the cell's record (its table row) in ``results_dir/cells/<label>-<key>.json``
  with its per-query average precision beside it (``.queries.parquet``), keyed
  by the training inputs plus the evaluation specs. Adding a benchmark re-evaluates
  kept models (embeddings of texts already encoded come from the model's
  embedding cache) instead of retraining them.

A rerun skips finished cells, so a study can be continued over several runs, and
on another machine from committed results. ``polyqa study --plan`` lists every
cell and its estimated cost without loading a model or reading data.

The package, by concern: ``config`` (StudyConfig), ``grid`` (cells, keys, plan and cost),
``articles`` (split and samples), ``cell`` (one cell trained and evaluated), ``results`` (records and
the table's columns), ``job`` (StudyJob), ``analysis``, ``plots`` and ``report`` (REPORT.md).

Outputs in ``results_dir``: ``cells.parquet`` and ``cells.csv`` (one row per
cell), PNG plots, and ``REPORT.md`` answering the question with its numbers.
"""

from polyqa.study.config import StudyConfig
from polyqa.study.grid import Cell, cell_key, plan_cells, plan_lines, plan_rows, train_key
from polyqa.study.job import StudyJob, StudyPlan

__all__ = ["Cell", "StudyConfig", "StudyJob", "StudyPlan", "cell_key", "plan_cells", "plan_lines", "plan_rows",
           "train_key"]
