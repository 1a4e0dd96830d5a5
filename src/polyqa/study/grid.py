"""The grid: which cells a study has, what identifies each, and what each is estimated to cost.

Needs neither data nor models (``polyqa study --plan``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from polyqa.batching.planner import HYBRID, MONO, XY
from polyqa.study.config import StudyConfig, as_list, miner_settings

ZERO_SHOT = "zero-shot"  # the untrained base model's row


@dataclass(frozen=True)
class Cell:
    n_languages: int  # 0: the untrained base model
    strategy: str  # x-x-mono | x-x | x-y | hybrid | zero-shot
    languages_per_batch: int | None
    seed: int
    languages: tuple[str, ...]
    alpha: float | None = None  # hybrid mixing weight; None: the study's train.alpha
    base_model: str | None = None  # None: the study's only base model
    hard_negatives: str | None = None  # mined: one mined negative per pair; None: in-batch negatives only

    @property
    def label(self) -> str:
        cap = "all" if self.languages_per_batch is None else str(self.languages_per_batch)
        alpha = "" if self.alpha is None else f"-a{self.alpha:g}"
        model = "" if self.base_model is None else f"{model_tag(self.base_model)}-"
        negatives = "" if self.hard_negatives is None else f"-{self.hard_negatives}"
        return f"{model}n{self.n_languages}-{self.strategy}{alpha}{negatives}-cap{cap}-seed{self.seed}"


def model_tag(model: str) -> str:
    """A short, file-name-safe name of a base model for cell labels (an alias as is, else its last part)."""
    tail = model.rstrip("/").rsplit("/", 1)[-1]
    return "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in tail) or "model"


def cell_model(config: StudyConfig, cell: Cell) -> str:
    return cell.base_model or config.base_models[0]


def cell_alpha(config: StudyConfig, cell: Cell) -> float | None:
    """The mixing weight a hybrid cell trains with (None for other strategies, where it means nothing)."""
    if cell.strategy != HYBRID:
        return None
    return config.base_alpha if cell.alpha is None else cell.alpha


def _why_left_out(n: int, strategy: str, cap: int | None, alpha: float | None) -> str | None:
    if strategy in (XY, HYBRID) and n < 2:
        return f"{strategy} batches pair different languages: needs at least two"
    if cap is not None and cap > n:
        return f"languages_per_batch {cap} > {n} training languages"
    if strategy == MONO and cap not in (None, 1):
        return "x-x-mono batches hold one language; a cap changes nothing"
    if strategy != HYBRID and alpha is not None:
        return f"alpha mixes x-x-mono into hybrid batches; {strategy} has no alpha"
    return None


def plan_cells(config: StudyConfig) -> tuple[list[Cell], list[dict[str, Any]]]:
    """The grid's cells (main grid, then extra cells; each once), plus the combinations left out
    and why (never silently). Needs neither data nor models."""
    cells: dict[Cell, None] = {}
    skipped: dict[tuple, dict[str, Any]] = {}
    models = config.base_models
    several = len(models) > 1

    def normal_alpha(alpha: float | None) -> float | None:
        # The study's own alpha is the default cell: one cell (and label) whichever way it is written.
        return None if alpha is None or float(alpha) == config.base_alpha else float(alpha)

    def add(model: str, n: int, strategy: str, cap: int | None, alpha: float | None, seeds: Iterable[int],
            explicit_alpha: bool, negatives: str | None = None) -> None:
        why = _why_left_out(n, strategy, cap, alpha if explicit_alpha else None)
        if why:
            key = (n, strategy, cap, why)
            skipped.setdefault(key, {"n_languages": n, "strategy": strategy, "cap": cap, "why": why})
            return
        langs = tuple(config.language_order[:n])
        a = normal_alpha(alpha) if strategy == HYBRID else None
        for seed in seeds:
            cells.setdefault(Cell(n, strategy, cap, int(seed), langs, a, model if several else None,
                                  negatives or None))

    grid_alphas = list(dict.fromkeys(normal_alpha(a) for a in config.alphas))
    for model in models:
        if config.include_zero_shot:
            cells.setdefault(Cell(0, ZERO_SHOT, None, 0, (), None, model if several else None))
        for n in config.language_counts:
            for strategy in config.strategies:
                for cap in config.languages_per_batch:
                    for alpha in grid_alphas if strategy == HYBRID else [None]:
                        add(model, n, strategy, cap, alpha, config.seeds, explicit_alpha=False)
        for extra in config.extra_cells:
            seeds = [int(s) for s in extra.get("seeds", config.seeds)]
            caps = as_list(extra["languages_per_batch"]) if "languages_per_batch" in extra \
                else config.languages_per_batch
            for n in as_list(extra["n_languages"]):
                for strategy in as_list(extra["strategy"]):
                    for cap in caps:
                        if "alpha" in extra:
                            alphas, explicit = as_list(extra["alpha"]), True
                        else:
                            alphas, explicit = (grid_alphas if strategy == HYBRID else [None]), False
                        for alpha in alphas:
                            for negatives in as_list(extra.get("hard_negatives")):
                                add(model, int(n), str(strategy), cap, alpha, seeds, explicit_alpha=explicit,
                                    negatives=negatives or None)
    return list(cells), list(skipped.values())


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cell_train_settings(config: StudyConfig, cell: Cell) -> dict[str, Any]:
    """The study's training settings with the cell's own alpha (unchanged when it has none)."""
    settings = dict(config.train)
    if cell.alpha is not None:
        settings["alpha"] = cell.alpha
    if cell.hard_negatives is not None:
        settings["hard_negatives"] = cell.hard_negatives
    return settings


def training_inputs(config: StudyConfig, cell: Cell, corpus_fingerprint: str) -> dict[str, Any]:
    """Everything that determines a cell's trained model.

    Laid out as the single cell key was before evaluation was keyed apart, so a cell whose
    inputs did not change keeps its key (alpha and base model enter through ``train`` and
    ``base_model``, not through the cell's identity).
    """
    trained = bool(cell.n_languages)
    identity = {k: v for k, v in asdict(cell).items() if k not in ("alpha", "base_model", "hard_negatives")}
    inputs = {
        "cell": identity,
        "base_model": cell_model(config, cell),
        "train": cell_train_settings(config, cell) if trained else None,
        "split": config.split,
        "corpus": corpus_fingerprint if trained else None,
    }
    if cell.hard_negatives is not None:  # mined from the same corpus: the miner's settings decide them
        inputs["mining"] = miner_settings(config).as_dict()
    return inputs


def train_key(config: StudyConfig, cell: Cell, corpus_fingerprint: str) -> str:
    """Hash of everything that determines a cell's model: its folder in work_dir/models."""
    return _hash(training_inputs(config, cell, corpus_fingerprint))


def cell_key(config: StudyConfig, cell: Cell, corpus_fingerprint: str) -> str:
    """Hash of everything that determines a cell's result: the training inputs plus the evaluation."""
    return _hash({**training_inputs(config, cell, corpus_fingerprint),
                  "evaluate": config.evaluate, "unseen": config.unseen})


def _per(value: Any, name: str) -> float:
    return float(value.get(name, 0.0)) if isinstance(value, Mapping) else float(value or 0.0)


def cell_cost(config: StudyConfig, cell: Cell) -> dict[str, float] | None:
    """Estimated cost of one cell in ``cost_estimate.unit``: training (trained cells) plus each
    evaluated benchmark; None without a ``cost_estimate``."""
    est = config.cost_estimate
    if not est:
        return None
    train = _per(est.get("train", 0), cell_model(config, cell)) if cell.n_languages else 0.0
    evaluate = sum(_per(est.get("evaluate", 0), spec["benchmark"]) for spec in config.evaluate
                   if spec.get("data_dir") is not None)  # as run_cell: a benchmark without a folder is skipped
    return {"train": train, "evaluate": evaluate, "total": train + evaluate}


def plan_rows(config: StudyConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """The plan: one row per cell (label, languages, estimated cost), the combinations left out, and
    the totals (cells, per-cell sum, the one-off corpus cost). Reads no data and loads no model."""
    cells, skipped = plan_cells(config)
    rows = [{"cell": c.label, "languages": ",".join(c.languages), "cost": cell_cost(config, c)} for c in cells]
    est = config.cost_estimate or {}
    totals: dict[str, Any] = {"cells": len(cells), "trained": sum(1 for c in cells if c.n_languages),
                              "unit": est.get("unit")}
    if est:
        totals["cells_cost"] = sum(r["cost"]["total"] for r in rows)
        totals["corpus_cost"] = float(est.get("corpus", 0.0))
        totals["total_cost"] = totals["cells_cost"] + totals["corpus_cost"]
    return rows, skipped, totals


def plan_lines(config: StudyConfig) -> list[str]:
    """The plan as text: ``<label> <languages>  est. <cost>`` per cell, the left-out combinations, totals."""
    rows, skipped, totals = plan_rows(config)
    width = max((len(r["cell"]) + len(r["languages"]) + 1 for r in rows), default=0)
    unit = totals.get("unit")
    lines = []
    for r in rows:
        head = f"{r['cell']} {r['languages']}".ljust(width)
        cost = r["cost"]
        if cost is None:
            lines.append(head)
        else:
            parts = (f"train {cost['train']:.2f} + " if cost["train"] else "") + f"evaluate {cost['evaluate']:.2f}"
            lines.append(f"{head}  est. {cost['total']:.2f} {unit} ({parts})")
    for s in skipped:
        lines.append(f"skipped n={s['n_languages']} {s['strategy']} cap={s['cap']}: {s['why']}")
    summary = f"{totals['cells']} cells ({totals['trained']} trained)"
    if unit:
        summary += (f"; est. {totals['cells_cost']:.1f} {unit} for the cells + {totals['corpus_cost']:.1f} "
                    f"for the corpus = {totals['total_cost']:.1f} {unit}")
    else:
        summary += "; no cost_estimate in the config"
    lines.append(summary)
    return lines
