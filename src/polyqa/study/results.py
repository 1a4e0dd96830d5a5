"""A study's results: one record per finished cell, its per-query APs, and the table's columns."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polyqa import paths, storage
from polyqa.evaluate.result import EvaluationResult, SettingScores
from polyqa.study.config import StudyConfig
from polyqa.study.grid import Cell

log = logging.getLogger(__name__)

CELLS_DIR = "cells"  # in results_dir: one JSON record per finished cell (committed with the results)


PER_QUERY_SUFFIX = ".queries.parquet"  # beside a cell's record: every query's AP (paired bootstrap)


def cell_record_path(config: "StudyConfig", cell: "Cell", key: str) -> Path:
    """Where a finished cell's row is kept: in the results folder, so a study can be continued
    on another machine from the committed results alone."""
    return Path(paths.expand(config.results_dir)) / CELLS_DIR / f"{cell.label}-{key}.json"


def per_query_path(record: Path) -> Path:
    """The per-query AP file beside a cell record."""
    return record.with_name(record.name[: -len(".json")] + PER_QUERY_SUFFIX)


def read_cell_record(path: Path) -> dict[str, Any] | None:
    """A finished cell's row, or None when there is none. A damaged record (a crash while it was
    written by an older version, a bad edit) is set aside with a warning, so the cell runs again."""
    if not path.exists():
        return None
    try:
        row = json.loads(path.read_text("utf-8"))
        if isinstance(row, dict) and "cell" in row:
            return row
        problem = "not a cell record"
    except (ValueError, UnicodeDecodeError) as exc:
        problem = str(exc)
    aside = path.with_name(path.name + ".damaged")
    path.replace(aside)
    log.warning("%s is damaged (%s): set aside as %s; the cell runs again", path, problem, aside.name)
    return None


# The table's first columns, in this order (the metrics follow, sorted).
ID_COLUMNS = ("cell", "base_model", "n_languages", "strategy", "alpha", "languages_per_batch", "hard_negatives",
              "seed", "languages", "key", "train_key")


SETTING_COLUMNS = {"monolingual": "monolingual", "cross-lingual": "cross_lingual", "multilingual": "multilingual"}


@dataclass(frozen=True)
class BenchmarkColumns:
    """The table's columns of one benchmark: the one place their names are spelled, for the cells
    that write them and the report that reads them (``xquad_r_multilingual_map``, ``miracl_ndcg10``)."""

    benchmark: str  # as configured: xquad-r, mlqa-r, miracl

    @property
    def prefix(self) -> str:
        return self.benchmark.replace("-", "_")

    @property
    def title(self) -> str:
        """The benchmark as the report names it (XQuAD-R, MIRACL)."""
        from polyqa.evaluate.benchmark import benchmark_title

        return benchmark_title(self.benchmark)

    def column(self, metric: str) -> str:
        return f"{self.prefix}_{metric}"

    def map(self, setting: str, languages: str | None = None) -> str:
        """mAP of a setting; ``languages`` "seen" or "unseen": over those languages' queries (or pairs) only."""
        return self.column(f"{SETTING_COLUMNS[setting]}_map" + (f"_{languages}" if languages else ""))

    def map_at_20(self, setting: str) -> str:
        return self.column(f"{SETTING_COLUMNS[setting]}_map_at_20")

    def recall(self, setting: str, k: int) -> str:
        return self.column(f"{SETTING_COLUMNS[setting]}_r{k}")

    @property
    def rank_distance(self) -> str:
        return self.column("rank_distance")

    @property
    def queries(self) -> str:
        return self.column("queries")

    @property
    def candidates(self) -> str:
        return self.column("candidates")

    @property
    def ndcg_at_10(self) -> str:
        return self.column("ndcg10")

    @property
    def recall_at_100(self) -> str:
        return self.column("recall100")


RECALL_KS = (1, 10)  # R@k columns of each LAReQA setting


def metric_columns(benchmark: str, result: Mapping[str, Any], seen: set[str], unseen: set[str]) -> dict[str, Any]:
    """One evaluation result as the table's columns of its benchmark.

    Seen and unseen: the queries of languages trained on and not; cross-lingual, a pair is seen
    only when both sides were trained on, unseen when either side was not.
    """
    cols, scores = BenchmarkColumns(benchmark), EvaluationResult.from_dict(result)
    if not scores.has_language_pairs:
        mono = scores.settings["monolingual"]
        return {cols.ndcg_at_10: mono.ndcg_at_10, cols.recall_at_100: mono.recall_at_100}
    row: dict[str, Any] = {}
    for setting in SETTING_COLUMNS:
        block = scores.settings.get(setting) or SettingScores()
        row[cols.map(setting)] = block.map
        row[cols.map_at_20(setting)] = block.map_at_20
        for k in RECALL_KS:
            row[cols.recall(setting, k)] = block.recall.get(k)
        row[cols.map(setting, "seen")] = block.map_of(seen)
        row[cols.map(setting, "unseen")] = block.map_touching(unseen)
    row[cols.rank_distance] = scores.rank_distance
    row[cols.queries] = scores.queries
    row[cols.candidates] = scores.candidates
    return row


def pairs_used_and_skipped(record: Mapping[str, Any]) -> dict[str, Any]:
    """A training run's (qa_id, language) rows used and skipped, and the skipped ones per reason
    summed over languages (a JSON object, one column whatever the reasons)."""
    reasons: dict[str, int] = {}
    for per_lang in (record.get("skipped_rows") or {}).values():
        for reason, n in per_lang.items():
            reasons[reason] = reasons.get(reason, 0) + int(n)
    return {
        "train_pairs_used": sum(int(n) for n in (record.get("usable_rows") or {}).values()),
        "train_pairs_skipped": int(record.get("skipped_rows_total") or 0),
        "train_pairs_skipped_reasons": json.dumps({k: v for k, v in sorted(reasons.items()) if v}),
    }


def training_columns(record: Mapping[str, Any]) -> dict[str, Any]:
    totals = record.get("totals") or {}  # over resumed runs too

    def total(key: str) -> Any:
        return totals.get(key, record.get(key))

    return dict(
        train_steps=record.get("global_step", record.get("steps")),
        train_examples=total("examples_seen"),
        train_tokens=total("tokens_seen"),
        train_seconds=total("wall_seconds"),
        train_examples_per_second=record.get("examples_per_second"),
        train_peak_rss_mb=(record.get("peak_rss_bytes") or 0) / 2**20,
        train_loss_first=record.get("training_loss_first"),
        train_loss_last=record.get("training_loss_last"),
        **pairs_used_and_skipped(record),
    )


def write_per_query(path: Path, tables: Mapping[str, Mapping[str, list]]) -> None:
    """One cell's per-query APs, every benchmark in one small zstd parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list] = {"benchmark": [], "setting": [], "language": [], "qid": [], "ap": [], "ap_at_20": []}
    for bench, cols in tables.items():
        columns["benchmark"] += [bench] * len(cols["qid"])
        for key in ("setting", "language", "qid", "ap", "ap_at_20"):
            columns[key] += list(cols[key])
    schema = pa.schema([("benchmark", pa.string()), ("setting", pa.string()), ("language", pa.string()),
                        ("qid", pa.string()), ("ap", pa.float32()), ("ap_at_20", pa.float32())])
    with storage.atomic_file(path) as tmp:
        pq.write_table(pa.Table.from_pydict(columns, schema=schema), tmp, compression="zstd")



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



def plain_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
