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

Outputs in ``results_dir``: ``cells.parquet`` and ``cells.csv`` (one row per
cell), PNG plots, and ``REPORT.md`` answering the question with its numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from polyqa import paths, storage
from polyqa.batching.pairs import MINED
from polyqa.batching.planner import HYBRID, MONO, STRATEGIES, XY
from polyqa.corpus.manifest import Manifest
from polyqa.errors import (
    ConfigError,
    construct_config,
    PolyqaError,
    check_bool,
    check_choice,
    check_int,
    check_languages,
    check_number,
)
from polyqa.languages import ENGLISH
from polyqa.locking import OutputLock

log = logging.getLogger(__name__)

ZERO_SHOT = "zero-shot"  # the untrained base model's row
SETTINGS = ("monolingual", "cross-lingual", "multilingual")
CELLS_DIR = "cells"  # in results_dir: one JSON record per finished cell (committed with the results)
PER_QUERY_SUFFIX = ".queries.parquet"  # beside a cell's record: every query's AP (paired bootstrap)
MODELS_DIR = "models"  # in work_dir: one folder per trained model, keyed by its training inputs
DEFAULT_ALPHA = 0.5  # polyqa.train.TrainConfig.alpha's default (checked in the tests)


def cell_record_path(config: "StudyConfig", cell: "Cell", key: str) -> Path:
    """Where a finished cell's row is kept: in the results folder, so a study can be continued
    on another machine from the committed results alone."""
    return Path(paths.expand(config.results_dir)) / CELLS_DIR / f"{cell.label}-{key}.json"


def per_query_path(record: Path) -> Path:
    """The per-query AP file beside a cell record."""
    return record.with_name(record.name[: -len(".json")] + PER_QUERY_SUFFIX)


@dataclass
class StudyConfig:
    """A study grid; a YAML config maps onto these fields one to one."""

    name: str
    results_dir: str  # table, plots, report and one record per finished cell (small; committed)
    work_dir: str  # corpus, trained models, evaluation outputs (large; not committed)
    # The training corpus: an existing polyqa corpus folder, or a build config
    # (mapping) that polyqa.corpus.build turns into one in work_dir/corpus.
    corpus: str | dict[str, Any] = ""
    # Article-level held-out split of a LAReQA-format set (XQuAD-R): the corpus
    # build keeps only training articles and evaluation only held-out ones.
    split: dict[str, Any] | None = None  # {data_dir, heldout_fraction, seed}
    # The encoder every cell starts from; a list makes the model an axis of the grid.
    base_model: str | list[str] = "minilm"
    language_order: list[str] = field(default_factory=list)  # first N are trained on
    unseen: list[str] = field(default_factory=list)  # never trained on; must not be in the order
    language_counts: list[int] = field(default_factory=lambda: [1, 2, 4])
    strategies: list[str] = field(default_factory=lambda: [MONO, XY, HYBRID])
    languages_per_batch: list[int | None] = field(default_factory=lambda: [None])
    # Hybrid mixing weights (share of x-x-mono batches) of the main grid; null: train.alpha.
    alphas: list[float | None] = field(default_factory=lambda: [None])
    seeds: list[int] = field(default_factory=lambda: [0])
    # Selected cells beyond the main grid, e.g. [{n_languages: 9, strategy: hybrid, alpha: [0.25, 0.75]}].
    # Each key takes one value or a list; a key left out takes the main grid's values (seeds: `seeds`).
    extra_cells: list[dict[str, Any]] = field(default_factory=list)
    # Older name of extra_cells for more seeds: [{n_languages: 4, strategy: hybrid, seeds: [1, 2]}]
    seed_cells: list[dict[str, Any]] = field(default_factory=list)
    include_zero_shot: bool = True  # evaluate the untrained base model as a reference row
    # How cells with ``hard_negatives: mined`` get their negatives: polyqa.export.MinerSettings
    # ({model, num_negatives, range_min, range_max, ...}), mined once on the corpus into work_dir/negatives.
    mining: dict[str, Any] | None = None
    train: dict[str, Any] = field(default_factory=dict)  # polyqa.train.TrainConfig settings
    evaluate: list[dict[str, Any]] = field(default_factory=list)  # [{benchmark, data_dir, ...}]
    # Translation cost of an imported corpus is estimated from its English text:
    # NLLB tokens ~ words * tokens_per_word, seconds = tokens / tokens_per_second.
    translation_estimate: dict[str, float] = field(
        default_factory=lambda: {"tokens_per_word": 1.35, "tokens_per_second": 150.0}
    )
    notes: str = ""  # what the reader must know about this run (scale, model); printed in the report
    # Estimated cost for the plan (`polyqa study --plan`): {unit, corpus, train, evaluate}; see plan_rows.
    cost_estimate: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.language_order = check_languages("language_order", self.language_order, optional=False)
        self.unseen = check_languages("unseen", self.unseen, optional=False)
        check_study_config(self)
        overlap = sorted(set(self.language_order) & set(self.unseen))
        if overlap:
            raise ValueError(f"study {self.name}: languages both trained on and unseen: {overlap}")
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad:
            raise ValueError(f"study {self.name}: unknown strategies {bad}; known: {list(STRATEGIES)}")
        extra_counts = [n for entry in self.extra_cells + self.seed_cells
                        for n in _as_list(entry.get("n_languages"))]
        too_many = [n for n in self.language_counts + extra_counts if n < 1 or n > len(self.language_order)]
        if too_many:
            raise ValueError(
                f"study {self.name}: language counts {too_many} outside 1..{len(self.language_order)}"
            )
        if not self.evaluate:
            raise ValueError(f"study {self.name}: no benchmarks under 'evaluate'")

    @property
    def base_models(self) -> list[str]:
        return [self.base_model] if isinstance(self.base_model, str) else list(self.base_model)

    @property
    def base_alpha(self) -> float:
        """The hybrid mixing weight a cell without its own alpha trains with."""
        return float(self.train.get("alpha", DEFAULT_ALPHA))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> StudyConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown}", where=source, todo=f"known: {sorted(known)}")
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
                   and f.name not in data]
        if missing:
            raise ConfigError(f"missing required setting(s) {missing}", where=source)
        return construct_config(cls, data, source)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> StudyConfig:
        from polyqa.train.config import read_yaml  # names the file on unreadable, non-UTF-8 or bad YAML

        data = read_yaml(path)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, source=str(path))


# Training settings each cell sets itself: a value under ``train`` would be silently replaced.
CELL_TRAIN_SETTINGS = ("corpus", "output_dir", "base_model", "languages", "strategy", "languages_per_batch",
                       "seed", "resume")
# Evaluation settings the study sets (model, output, held-out articles, embedding cache).
CELL_EVAL_SETTINGS = ("model", "output", "articles_file", "cache_dir")
SPLIT_SETTINGS = ("data_dir", "heldout_fraction", "seed")


def check_study_config(config: StudyConfig) -> None:
    """ConfigError naming the first invalid setting of a study (the per-cell train and evaluate
    settings are checked by TrainConfig and EvaluationConfig themselves)."""
    from polyqa.encoders import check_model_name
    from polyqa.evaluate.config import EvaluationConfig
    from polyqa.train.config import TrainConfig

    for name in ("name", "results_dir", "work_dir"):
        if not isinstance(getattr(config, name), str) or not getattr(config, name).strip():
            raise ConfigError(f"{name} must be set (text), got {getattr(config, name)!r}")
    if not isinstance(config.corpus, (str, Mapping)) or not config.corpus:
        raise ConfigError("corpus must be a corpus folder or a build config (mapping)", todo="set corpus")
    models = config.base_model
    if isinstance(models, list):
        if not models or len(set(models)) != len(models):
            raise ConfigError(f"base_model must be a model or a list of distinct models, got {models!r}")
        for i, model in enumerate(models):
            check_model_name(model, f"base_model[{i}]")
    else:
        check_model_name(models, "base_model")
    for name in ("language_counts", "strategies", "languages_per_batch", "alphas", "seeds", "extra_cells",
                 "seed_cells", "evaluate"):
        if not isinstance(getattr(config, name), list):
            raise ConfigError(f"{name} must be a list, got {getattr(config, name)!r}")
    if not config.language_order:
        raise ConfigError("language_order must list at least one language")
    for n in config.language_counts:
        check_int("language_counts[]", n, minimum=1)
    for cap in config.languages_per_batch:
        check_int("languages_per_batch[]", cap, minimum=1, optional=True)
    config.alphas = [check_number("alphas[]", a, minimum=0.0, maximum=1.0, optional=True) for a in config.alphas]
    if not config.alphas:
        raise ConfigError("alphas must list at least one value (null: the train.alpha value)")
    for seed in config.seeds:
        check_int("seeds[]", seed, minimum=0)
    for i, extra in enumerate(config.seed_cells):
        if not isinstance(extra, Mapping) or set(extra) - {"n_languages", "strategy", "seeds"}:
            raise ConfigError(f"seed_cells[{i}] must be {{n_languages, strategy, seeds}}, got {extra!r}",
                              todo="extra_cells takes alpha and languages_per_batch too")
        check_extra_cell(f"seed_cells[{i}]", extra)
    for i, extra in enumerate(config.extra_cells):
        check_extra_cell(f"extra_cells[{i}]", extra)
    check_bool("include_zero_shot", config.include_zero_shot)
    if config.split is not None:
        split = config.split
        if not isinstance(split, Mapping) or "data_dir" not in split or set(split) - set(SPLIT_SETTINGS):
            raise ConfigError(f"split must be a mapping of {list(SPLIT_SETTINGS)} with data_dir, got {split!r}")
        check_number("split.heldout_fraction", split.get("heldout_fraction", 0.25), above=0.0, below=1.0)
        check_int("split.seed", split.get("seed", 0), minimum=0)
    if not isinstance(config.train, Mapping):
        raise ConfigError(f"train must be a mapping of training settings, got {config.train!r}")
    per_cell = sorted(set(config.train) & set(CELL_TRAIN_SETTINGS))
    if per_cell:
        raise ConfigError(f"train: {per_cell} are set by the study for each cell",
                          todo="use base_model, language_order, strategies, languages_per_batch and seeds")
    try:
        TrainConfig.from_dict({**config.train, "corpus": "study-corpus", "output_dir": "study-output"},
                              source="train")
    except PolyqaError as exc:
        raise ConfigError(f"train: {exc.what}", todo=exc.todo) from None
    for i, spec in enumerate(config.evaluate):
        if not isinstance(spec, Mapping) or "benchmark" not in spec:
            raise ConfigError(f"evaluate[{i}] must be a mapping with a benchmark, got {spec!r}")
        spec = dict(spec)
        held_out = spec.pop("held_out", False)
        check_bool(f"evaluate[{i}].held_out", held_out)
        if held_out and not config.split:
            raise ConfigError(f"evaluate[{i}]: held_out needs a split (the held-out articles come from it)",
                              todo="add split: {data_dir, heldout_fraction, seed}, or drop held_out")
        set_by_study = sorted(set(spec) & set(CELL_EVAL_SETTINGS))
        if set_by_study:
            raise ConfigError(f"evaluate[{i}]: {set_by_study} are set by the study")
        sample = spec.pop("sample_articles", None)
        sample_seed = spec.pop("sample_seed", 0)
        check_int(f"evaluate[{i}].sample_articles", sample, minimum=1, optional=True)
        check_int(f"evaluate[{i}].sample_seed", sample_seed, minimum=0)
        if sample is not None and held_out:
            raise ConfigError(f"evaluate[{i}]: sample_articles and held_out both choose articles",
                              todo="use one of them")
        if sample is not None:
            from polyqa.evaluate.benchmark import benchmark_kind

            try:
                takes_titles = "titles" in benchmark_kind(spec["benchmark"]).options
            except PolyqaError as exc:
                raise ConfigError(f"evaluate[{i}]: {exc.what}", todo=exc.todo) from None
            if not takes_titles:
                raise ConfigError(f"evaluate[{i}]: sample_articles needs a benchmark with articles "
                                  f"(xquad-r, mlqa-r, lareqa), not {spec['benchmark']!r}")
        try:
            EvaluationConfig.from_dict({**spec, "model": "minilm", "output": "study-eval.json"},
                                       source=f"evaluate[{i}]")
        except PolyqaError as exc:
            raise ConfigError(f"evaluate[{i}]: {exc.what}", todo=exc.todo) from None
    estimate = config.translation_estimate
    if not isinstance(estimate, Mapping) or set(estimate) != {"tokens_per_word", "tokens_per_second"}:
        raise ConfigError(f"translation_estimate must be {{tokens_per_word, tokens_per_second}}, got {estimate!r}")
    for key, value in estimate.items():
        check_number(f"translation_estimate.{key}", value, above=0.0)
    if config.cost_estimate is not None:
        check_cost_estimate(config)
    if config.mining is not None:
        miner_settings(config)
    mined = [i for i, extra in enumerate(config.extra_cells) if MINED in _as_list(extra.get("hard_negatives"))]
    if mined and config.mining is None:
        raise ConfigError(f"extra_cells[{mined[0]}]: hard_negatives: mined needs a mining section",
                          todo="add mining: {model: minilm} (polyqa mine-negatives settings)")
    if "hard_negatives" in config.train or "negatives" in config.train:
        raise ConfigError("train: hard_negatives and negatives are set per cell",
                          todo="use extra_cells with hard_negatives: mined and a mining section")


NEGATIVES_DIR = "negatives"  # in work_dir: the negatives mined on the study corpus


def miner_settings(config: StudyConfig) -> Any:
    """The study's ``mining`` section as MinerSettings; candidates are what training retrieves
    (``train.positive``) unless the section says otherwise."""
    from polyqa.export.mining import MinerSettings

    mining = config.mining
    if not isinstance(mining, Mapping) or "model" not in mining:
        raise ConfigError(f"mining must be a mapping of polyqa mine-negatives settings with a model, got {mining!r}")
    known = {f.name for f in fields(MinerSettings)}
    unknown = sorted(set(mining) - known)
    if unknown:
        raise ConfigError(f"mining: unknown setting(s) {unknown}", todo=f"known: {sorted(known)}")
    return MinerSettings(**{"positive": config.train.get("positive", "passage"), **mining})


EXTRA_CELL_KEYS = ("n_languages", "strategy", "alpha", "languages_per_batch", "hard_negatives", "seeds")


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_extra_cell(name: str, extra: Any) -> None:
    """ConfigError unless ``extra`` is {n_languages, strategy[, alpha, languages_per_batch, seeds]},
    each one value or a list."""
    if not isinstance(extra, Mapping) or set(extra) - set(EXTRA_CELL_KEYS) \
            or not {"n_languages", "strategy"} <= set(extra):
        raise ConfigError(f"{name} must be a mapping of {list(EXTRA_CELL_KEYS)} with n_languages and strategy, "
                          f"got {extra!r}")
    for n in _as_list(extra["n_languages"]):
        check_int(f"{name}.n_languages", n, minimum=1)
    for strategy in _as_list(extra["strategy"]):
        check_choice(f"{name}.strategy", strategy, STRATEGIES)
    for alpha in _as_list(extra.get("alpha")):
        check_number(f"{name}.alpha", alpha, minimum=0.0, maximum=1.0, optional=True)
    for cap in _as_list(extra.get("languages_per_batch")):
        check_int(f"{name}.languages_per_batch", cap, minimum=1, optional=True)
    for negatives in _as_list(extra.get("hard_negatives")):
        if negatives not in (None, False, MINED):
            raise ConfigError(f"{name}.hard_negatives must be mined or false, got {negatives!r}")
    seeds = extra.get("seeds", [])
    if not isinstance(seeds, list):
        raise ConfigError(f"{name}.seeds must be a list, got {seeds!r}")
    for seed in seeds:
        check_int(f"{name}.seeds[]", seed, minimum=0)


COST_KEYS = ("unit", "corpus", "train", "evaluate")


def check_cost_estimate(config: StudyConfig) -> None:
    """``cost_estimate``: {unit: text, corpus: hours, train: hours or {model: hours},
    evaluate: hours or {benchmark: hours}}; every number >= 0, every model and benchmark named."""
    est = config.cost_estimate
    if not isinstance(est, Mapping) or set(est) - set(COST_KEYS) or "unit" not in est:
        raise ConfigError(f"cost_estimate must be a mapping of {list(COST_KEYS)} with a unit, got {est!r}")
    if not isinstance(est["unit"], str) or not est["unit"].strip():
        raise ConfigError(f"cost_estimate.unit must be text (e.g. GPU hours), got {est['unit']!r}")
    check_number("cost_estimate.corpus", est.get("corpus", 0), minimum=0.0)
    benchmarks = [spec["benchmark"] for spec in config.evaluate]
    for key, names, what in (("train", config.base_models, "base model"), ("evaluate", benchmarks, "benchmark")):
        value = est.get(key, 0)
        if isinstance(value, Mapping):
            missing = sorted(set(names) - set(value))
            unknown = sorted(set(value) - set(names))
            if missing or unknown:
                raise ConfigError(f"cost_estimate.{key} must give one estimate per {what}",
                                  todo=f"missing {missing}, unknown {unknown}")
            for name, hours in value.items():
                check_number(f"cost_estimate.{key}.{name}", hours, minimum=0.0)
        else:
            check_number(f"cost_estimate.{key}", value, minimum=0.0)


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
    # seed_cells (the older form): more seeds for the main grid's cells at (n, strategy).
    seed_extra = {(int(c["n_languages"]), str(c["strategy"])): [int(s) for s in c.get("seeds", [])]
                  for c in config.seed_cells}
    for model in models:
        if config.include_zero_shot:
            cells.setdefault(Cell(0, ZERO_SHOT, None, 0, (), None, model if several else None))
        for n in config.language_counts:
            for strategy in config.strategies:
                for cap in config.languages_per_batch:
                    for alpha in grid_alphas if strategy == HYBRID else [None]:
                        seeds = list(dict.fromkeys(list(config.seeds) + seed_extra.get((n, strategy), [])))
                        add(model, n, strategy, cap, alpha, seeds, explicit_alpha=False)
        for extra in config.extra_cells:
            seeds = [int(s) for s in extra.get("seeds", config.seeds)]
            caps = _as_list(extra["languages_per_batch"]) if "languages_per_batch" in extra \
                else config.languages_per_batch
            for n in _as_list(extra["n_languages"]):
                for strategy in _as_list(extra["strategy"]):
                    for cap in caps:
                        if "alpha" in extra:
                            alphas, explicit = _as_list(extra["alpha"]), True
                        else:
                            alphas, explicit = (grid_alphas if strategy == HYBRID else [None]), False
                        for alpha in alphas:
                            for negatives in _as_list(extra.get("hard_negatives")):
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


# ------------------------------------------------------------------ plan and cost


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


# ------------------------------------------------------------------ corpus and split


def article_split(data_dir: str | Path, heldout_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training titles, held-out titles) of a LAReQA-format set, from its English file."""
    from polyqa.sources.lareqa import article_titles

    try:
        titles = article_titles(data_dir)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read article titles for the split: {exc}") from None
    rng = random.Random(seed)
    shuffled = titles[:]
    rng.shuffle(shuffled)
    n_heldout = max(1, round(len(titles) * heldout_fraction))
    heldout = sorted(shuffled[:n_heldout])
    train = sorted(shuffled[n_heldout:])
    return train, heldout


def article_groups(data_dir: str | Path) -> list[list[tuple[str, str]]]:
    """The articles of a LAReQA-format set, each as its (file language, title) in every language.

    Articles are linked across languages by the question ids they share: in MLQA-R a German
    article has its own German title and shares ids with one English article. Groups come
    sorted by their titles, so a seeded draw over them does not depend on file order.
    """
    from polyqa.sources.lareqa import language_files, read_json

    owner: dict[str, tuple[str, str]] = {}
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for path in language_files(data_dir).values():
        for article in read_json(path).get("data") or []:
            node = (path.stem, str(article.get("title") or ""))
            root(node)
            for paragraph in article.get("paragraphs") or []:
                for qa in paragraph.get("qas") or []:
                    qid = str(qa.get("id"))
                    if qid in owner:
                        parent[root(node)] = root(owner[qid])
                    else:
                        owner[qid] = node
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for node in list(parent):
        groups.setdefault(root(node), []).append(node)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: json.dumps(g, ensure_ascii=False))


def sample_articles(data_dir: str | Path, n: int, seed: int) -> tuple[list[str], int]:
    """Titles (in every language) of ``n`` articles drawn with ``seed``, and how many there were.

    The evaluation keeps paragraphs by title; a title that also names an article outside the
    draw (in another language) would bring it in, so that is refused rather than evaluated.
    """
    groups = article_groups(data_dir)
    if n > len(groups):
        raise ValueError(f"{data_dir}: sample_articles {n} > the {len(groups)} articles there")
    picked = random.Random(seed).sample(range(len(groups)), n)
    titles = {title for i in picked for _, title in groups[i]}
    outside = {title for i in set(range(len(groups))) - set(picked) for _, title in groups[i]} & titles
    if outside:
        raise ValueError(f"{data_dir}: titles {sorted(outside)[:3]} name articles both inside and outside the "
                         "sample; an article-level subset by title is not possible there")
    return sorted(titles), len(groups)


def prepare_corpus(config: StudyConfig, train_titles: list[str] | None) -> tuple[Path, dict[str, Any]]:
    """The training corpus folder and its manifest (building it once when configured)."""
    if isinstance(config.corpus, str):
        corpus_dir = Path(paths.expand(config.corpus))
    else:
        from polyqa.corpus.job import build_corpus

        corpus_dir = Path(paths.expand(config.work_dir)) / "corpus"
        build = json.loads(json.dumps(config.corpus))  # deep copy
        if train_titles is not None:
            for source in build.get("sources", []):
                if isinstance(source, dict) and source.get("kind") == "parallel":
                    source["titles"] = train_titles
        build.setdefault("card_dir", None)
        build_corpus(build, corpus_dir)
    manifest = Manifest.load(corpus_dir)
    if manifest is None:
        raise FileNotFoundError(f"{corpus_dir}: no manifest.json; is this a polyqa corpus?")
    return corpus_dir, manifest


# What training reads of a corpus. The study's cache is keyed by these values, not by the shard
# files' checksums, so a new column in the corpus format does not invalidate finished cells.
TRAINING_COLUMNS = ("qa_id", "passage_id", "title", "question", "passage", "sentences", "answer_sentence",
                    "quality_pass")


def corpus_fingerprint(corpus_dir: str | Path, manifest: Manifest) -> str:
    """Identity of what training reads of a corpus: the training columns of every language, in order."""
    from polyqa.corpus import reader

    digest = hashlib.sha256()
    for lang in manifest.languages:
        table = reader.read_language(corpus_dir, lang, list(TRAINING_COLUMNS))
        digest.update(lang.encode())
        for batch in table.to_batches(max_chunksize=4096):
            digest.update(json.dumps(batch.to_pylist(), sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def translation_cost(config: StudyConfig, corpus_dir: Path, manifest: Manifest,
                     languages: Iterable[str]) -> dict[str, Any]:
    """Segments, tokens and seconds of machine translation the cell's languages need.

    Taken from the corpus build record when the corpus was translated; estimated
    from the English text and a measured engine throughput when it was imported.
    """
    targets = [lang for lang in languages if lang != ENGLISH]
    if not targets:
        return {"translation_segments": 0, "translation_tokens": 0, "translation_seconds": 0.0,
                "translation_estimated": False}
    per_lang = manifest.translation_per_language()
    if manifest.translates() and all(lang in per_lang for lang in targets):
        picked = [per_lang[lang] for lang in targets]
        return {
            "translation_segments": sum(int(p.get("translated", 0)) for p in picked),
            "translation_tokens": sum(int(p.get("source_tokens", 0)) for p in picked),
            "translation_seconds": sum(float(p.get("seconds", 0.0)) for p in picked),
            "translation_estimated": False,
        }
    from polyqa.corpus import reader

    english = reader.read_language(corpus_dir, ENGLISH, ["question", "sentences", "answer_text", "passage_id"])
    segments: set[str] = set()
    for row in english.to_pylist():
        segments.add(row["question"])
        segments.update(row["sentences"])
        if row["answer_text"]:
            segments.add(row["answer_text"])
    words = sum(len(s.split()) for s in segments)
    est = config.translation_estimate
    tokens = words * float(est["tokens_per_word"])
    return {
        "translation_segments": len(segments) * len(targets),
        "translation_tokens": int(tokens * len(targets)),
        "translation_seconds": tokens * len(targets) / float(est["tokens_per_second"]),
        "translation_estimated": True,
    }


# ------------------------------------------------------------------ one cell


def _metrics_row(bench: str, result: Mapping[str, Any], seen: set[str], unseen: set[str]) -> dict[str, Any]:
    """Flatten one evaluation result into ``<bench>_<setting>_<metric>`` columns."""
    row: dict[str, Any] = {}
    settings = result["settings"]
    if bench == "miracl":
        mono = settings["monolingual"]
        row[f"{bench}_ndcg10"] = mono.get("nDCG@10")
        row[f"{bench}_recall100"] = mono.get("Recall@100")
        return row
    for setting in SETTINGS:
        block = settings.get(setting) or {}
        key = setting.replace("-", "_")
        row[f"{bench}_{key}_map"] = block.get("mAP")
        row[f"{bench}_{key}_map_at_20"] = block.get("mAP@20")
        for k in ("R@1", "R@10"):
            row[f"{bench}_{key}_{k.lower().replace('@', '')}"] = block.get(k)
        per = block.get("per_language")
        if per is None and setting == "cross-lingual":
            # Cross-lingual per pair "q->c": a pair is seen only when both sides were trained on.
            per_pair = block.get("per_pair") or {}
            groups: dict[str, list[float]] = {"seen": [], "unseen": []}
            for q, row_pairs in per_pair.items():
                for c, value in (row_pairs or {}).items():
                    if value is None:
                        continue
                    both_seen = q in seen and c in seen
                    any_unseen = q in unseen or c in unseen
                    if both_seen:
                        groups["seen"].append(value)
                    elif any_unseen:
                        groups["unseen"].append(value)
            for g, values in groups.items():
                row[f"{bench}_{key}_map_{g}"] = sum(values) / len(values) if values else None
            continue
        per = per or {}
        for g, members in (("seen", seen), ("unseen", unseen)):
            values = [v for lang, v in per.items() if lang in members and v is not None]
            row[f"{bench}_{key}_map_{g}"] = sum(values) / len(values) if values else None
    rd = result.get("rank_distance") or {}
    row[f"{bench}_rank_distance"] = rd.get("mean")
    counts = result.get("counts") or {}
    row[f"{bench}_queries"] = counts.get("queries")
    row[f"{bench}_candidates"] = counts.get("candidates")
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


def trained_record(train_dir: Path) -> dict[str, Any] | None:
    """The run record of a finished training in ``train_dir`` (model saved, record written), else None."""
    from polyqa.train.record import RUN_RECORD_FILE

    record = train_dir / RUN_RECORD_FILE
    if not record.is_file() or not (train_dir / "model" / "modules.json").is_file():
        return None
    try:
        return json.loads(record.read_text("utf-8"))
    except ValueError:
        return None  # a damaged record: train again (resuming from the newest checkpoint)


def train_cell(config: StudyConfig, cell: Cell, corpus_dir: Path, train_dir: Path,
               negatives_dir: Path | None = None) -> dict[str, Any]:
    """The cell's model in ``train_dir``: kept from an earlier run, or trained now. Returns its run record."""
    from polyqa.train import TrainConfig, train_retriever

    record = trained_record(train_dir)
    if record is not None:
        log.info("%s: model kept from an earlier run in %s", cell.label, train_dir)
        return record
    settings = {
        **cell_train_settings(config, cell),
        "corpus": str(corpus_dir),
        "output_dir": str(train_dir),
        "base_model": cell_model(config, cell),
        "languages": list(cell.languages),
        "strategy": cell.strategy,
        "languages_per_batch": cell.languages_per_batch,
        "seed": cell.seed,
        "resume": True,
    }
    if cell.hard_negatives == MINED:
        settings["negatives"] = str(negatives_dir)
    record = train_retriever(TrainConfig.from_dict(settings, source=f"study cell {cell.label}")).record
    # The model and its record are written: checkpoints only served to resume a killed run.
    shutil.rmtree(train_dir / "checkpoints", ignore_errors=True)
    return record


def _training_columns(record: Mapping[str, Any]) -> dict[str, Any]:
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


def run_cell(
    config: StudyConfig,
    cell: Cell,
    corpus_dir: Path,
    manifest: Manifest,
    eval_titles: Mapping[int, Path],
    key: str,
    model_key: str,
    negatives_dir: Path | None = None,
) -> dict[str, Any]:
    """Train (unless zero-shot, or kept) and evaluate one cell; returns its table row.

    ``eval_titles``: per ``config.evaluate`` index, the titles file of the articles evaluated
    (held-out split or a seeded sample). The row is written last, after the per-query file.
    """
    from polyqa.evaluate.run import EvaluateJob, EvaluationConfig

    work = Path(paths.expand(config.work_dir))
    model_root = work / MODELS_DIR / f"{cell.label}-{model_key}"
    cell_dir = work / CELLS_DIR / f"{cell.label}-{key}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {"cell": cell.label, "key": key, "train_key": model_key,
                           "base_model": cell_model(config, cell), "n_languages": cell.n_languages,
                           "strategy": cell.strategy, "alpha": cell_alpha(config, cell),
                           "languages_per_batch": cell.languages_per_batch, "seed": cell.seed,
                           "languages": ",".join(cell.languages)}
    if cell.hard_negatives is not None:  # only then: a study without mined cells keeps its columns
        row["hard_negatives"] = cell.hard_negatives
    model = cell_model(config, cell)
    if cell.n_languages:
        record = train_cell(config, cell, corpus_dir, model_root / "train", negatives_dir)
        model = str(model_root / "train" / "model")
        row.update(_training_columns(record))
        row.update(translation_cost(config, corpus_dir, manifest, cell.languages))
    else:
        row.update(train_steps=0, train_examples=0, train_tokens=0, train_seconds=0.0,
                   train_pairs_used=0, train_pairs_skipped=0, train_pairs_skipped_reasons="{}",
                   translation_segments=0, translation_tokens=0, translation_seconds=0.0,
                   translation_estimated=False)
    seen = set(cell.languages)
    eval_seconds = 0.0
    per_query: dict[str, Mapping[str, list]] = {}
    for i, spec in enumerate(config.evaluate):
        spec = {k: v for k, v in spec.items() if k not in STUDY_EVAL_KEYS}
        bench = spec.pop("benchmark")
        data_dir = spec.pop("data_dir", None)
        if data_dir is None:
            continue  # e.g. MLQA-R when no folder is given
        started = time.perf_counter()
        job = EvaluateJob(EvaluationConfig(
            model=model,
            benchmark=bench,
            data_dir=paths.expand(data_dir),
            output=str(cell_dir / f"eval-{bench}.json"),
            articles_file=str(eval_titles[i]) if i in eval_titles else None,
            # With the model: a re-evaluation (a benchmark added) encodes only texts not seen before.
            cache_dir=str(model_root / "embcache"),
            **spec,
        ))
        result = job.run()
        queries = job.per_query()
        if queries is not None:
            per_query[bench] = queries
        eval_seconds += time.perf_counter() - started
        row.update(_metrics_row(bench.replace("-", "_"), result, seen, set(config.unseen)))
    row["eval_seconds"] = eval_seconds
    row["total_seconds"] = float(row.get("train_seconds") or 0) + float(row["translation_seconds"])
    record_path = cell_record_path(config, cell, key)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    write_per_query(per_query_path(record_path), per_query)
    storage.atomic_write_text(record_path, json.dumps(row, indent=2, default=str))
    return row


# Evaluation settings only the study reads (the rest go to EvaluationConfig).
STUDY_EVAL_KEYS = ("held_out", "sample_articles", "sample_seed")


# ------------------------------------------------------------------ the study


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

    def finished(self, i: int) -> dict[str, Any] | None:
        return read_cell_record(cell_record_path(self.config, self.cells[i], self.keys[i]))


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
            header = (f"# {spec['benchmark']}: {n} of {total} articles drawn with seed {seed}; "
                      f"their titles in every language ({len(titles)})\n")
            path.write_text(header + "\n".join(titles) + "\n", "utf-8")
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
        heldout_file.write_text("\n".join(heldout) + "\n", "utf-8")
        (results_dir / "train_articles.txt").write_text("\n".join(train_titles) + "\n", "utf-8")
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
    """One study run: opened once (config, split, corpus, grid), then its pending cells one by one.

    ``polyqa study`` and the ``language-scaling`` flow both drive :meth:`run`; the flow passes
    an ``execute`` that runs each cell as a Prefect task, and adds nothing else.
    """

    def __init__(self, config: StudyConfig, only_cells: Iterable[str] | None = None) -> None:
        self.config = config
        # One writer per results folder: opening writes the split files, running writes cells and the report.
        with self.lock():
            self.plan = prepare_study(config)
        self.wanted = set(only_cells) if only_cells else None
        unknown = sorted(self.wanted - {c.label for c in self.plan.cells}) if self.wanted else []
        if unknown:
            raise ValueError(f"study {config.name}: no cells named {unknown}; see `polyqa study --plan`")

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


def run_study(config: StudyConfig, progress: Callable[[str], None] = log.info,
              only_cells: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Run (or continue) every cell, then write the table, plots and report."""
    return StudyJob(config, only_cells).run(progress=progress)


# The table's first columns, in this order (the metrics follow, sorted).
ID_COLUMNS = ("cell", "base_model", "n_languages", "strategy", "alpha", "languages_per_batch", "hard_negatives",
              "seed", "languages", "key", "train_key")


def write_results(config: StudyConfig, rows: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from polyqa.study_report import load_per_query, plot_study, render_report, significance

    results_dir = Path(paths.expand(config.results_dir))
    if not rows:
        return
    rows = [with_identity(config, row) for row in rows]
    present = {k for row in rows for k in row}
    columns = [c for c in ID_COLUMNS if c in present] + sorted(present - set(ID_COLUMNS))
    table = pa.Table.from_pylist([{c: _plain(row.get(c)) for c in columns} for row in rows])
    pq.write_table(table, results_dir / "cells.parquet")
    pacsv.write_csv(table, results_dir / "cells.csv")
    per_query = load_per_query(results_dir / CELLS_DIR, rows)
    tests = significance(rows, per_query, config)
    plots = plot_study(rows, config, results_dir)
    (results_dir / "REPORT.md").write_text(render_report(rows, skipped, config, plots, tests), "utf-8")


def with_identity(config: StudyConfig, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with ``base_model`` and ``alpha`` filled in (records written before they were columns)."""
    out = dict(row)
    out.setdefault("base_model", config.base_models[0])
    if "alpha" not in out:
        out["alpha"] = config.base_alpha if out.get("strategy") == HYBRID else None
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
