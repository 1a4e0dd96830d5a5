"""The study's configuration: :class:`StudyConfig` and its checks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polyqa.batching.pairs import MINED
from polyqa.batching.planner import HYBRID, MONO, STRATEGIES, XY
from polyqa.errors import ConfigError, PolyqaError, check_bool, check_choice, check_int, check_languages, check_number
from polyqa.settings import Codes, Flag, Location, build, check_keys, config, read_yaml, setting

DEFAULT_ALPHA = 0.5  # polyqa.train.TrainConfig.alpha's default (checked in the tests)


@config
class StudyConfig:
    """A study grid; a YAML config maps onto these settings one to one.

    Lists and mappings are declared as such for the reader and checked item by item by
    :func:`check_study_config`, whose messages name the entry (``extra_cells[0].alpha``).
    """

    name: str = setting(help="the study's name (titles of the table, plots and report)")
    results_dir: Location = setting(
        help="table, plots, report and one record per finished cell (small; committed)")
    work_dir: Location = setting(help="corpus, trained models, evaluation outputs (large; not committed)")
    corpus: Any = setting(
        "", help="the training corpus: a polyqa corpus folder, or a build config (mapping) built into "
        "work_dir/corpus")
    split: Any = setting(
        None, help="{data_dir, heldout_fraction, seed}: an article-level held-out split of a LAReQA-format set; "
        "the corpus keeps only training articles and evaluation only held-out ones")
    base_model: Any = setting("minilm", help="the encoder every cell starts from; a list makes it an axis")
    language_order: Codes = setting(default_factory=list, help="languages in the order cells add them")
    unseen: Codes = setting(default_factory=list, help="languages never trained on (not in language_order)")
    language_counts: list[Any] = setting(
        default_factory=lambda: [1, 2, 4], help="how many of language_order each cell trains on")
    strategies: list[Any] = setting(default_factory=lambda: [MONO, XY, HYBRID], help="batch strategies of the grid")
    languages_per_batch: list[Any] = setting(
        default_factory=lambda: [None], help="caps on distinct languages per batch (null: none)")
    alphas: list[Any] = setting(
        default_factory=lambda: [None], help="hybrid mixing weights (share of x-x-mono batches); null: train.alpha")
    seeds: list[Any] = setting(default_factory=lambda: [0], help="training seeds; each is a cell")
    extra_cells: list[Any] = setting(
        default_factory=list, help="cells beyond the main grid, e.g. [{n_languages: 9, strategy: hybrid, "
        "alpha: [0.25, 0.75]}]; each key takes one value or a list, a key left out takes the grid's values")
    include_zero_shot: Flag = setting(True, help="evaluate the untrained base model as a reference row")
    mining: Any = setting(
        None, help="how cells with hard_negatives: mined get negatives: polyqa mine-negatives settings "
        "({model, num_negatives, range_min, range_max, ...}), mined once into work_dir/negatives")
    train: Any = setting(default_factory=dict, help="polyqa.train.TrainConfig settings of every cell")
    evaluate: list[Any] = setting(default_factory=list, help="benchmarks: [{benchmark, data_dir, ...}]")
    # NLLB tokens ~ words * tokens_per_word, seconds = tokens / tokens_per_second.
    translation_estimate: Any = setting(
        default_factory=lambda: {"tokens_per_word": 1.35, "tokens_per_second": 150.0},
        help="how the translation cost of an imported corpus is estimated from its English text")
    notes: str = setting("", help="what the reader must know about this run (scale, model); printed in the report")
    cost_estimate: Any = setting(
        None, help="estimated cost for polyqa study --plan: {unit, corpus, train, evaluate}")

    def __post_init__(self) -> None:
        self.language_order = check_languages("language_order", self.language_order, optional=False)
        self.unseen = check_languages("unseen", self.unseen, optional=False)
        check_study_config(self)
        overlap = sorted(set(self.language_order) & set(self.unseen))
        if overlap:
            raise ConfigError(f"study {self.name}: languages both trained on and unseen: {overlap}")
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad:
            raise ConfigError(f"study {self.name}: unknown strategies {bad}; known: {list(STRATEGIES)}")
        extra_counts = [n for entry in self.extra_cells
                        for n in as_list(entry.get("n_languages"))]
        too_many = [n for n in self.language_counts + extra_counts if n < 1 or n > len(self.language_order)]
        if too_many:
            raise ConfigError(
                f"study {self.name}: language counts {too_many} outside 1..{len(self.language_order)}"
            )
        if not self.evaluate:
            raise ConfigError(f"study {self.name}: no benchmarks under 'evaluate'")

    @property
    def base_models(self) -> list[str]:
        return [self.base_model] if isinstance(self.base_model, str) else list(self.base_model)

    @property
    def base_alpha(self) -> float:
        """The hybrid mixing weight a cell without its own alpha trains with."""
        return float(self.train.get("alpha", DEFAULT_ALPHA))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> StudyConfig:
        return build(cls, data, source)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> StudyConfig:
        data = read_yaml(path)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, source=str(path))


# Training settings each cell sets itself: a value under ``train`` would be silently replaced.
CELL_TRAIN_SETTINGS = ("corpus", "output_dir", "base_model", "languages", "strategy", "languages_per_batch",
                       "seed", "resume")


# Evaluation settings the study sets (model, output, held-out articles, embedding cache).
CELL_EVAL_SETTINGS = ("model", "output", "articles_file", "cache_dir")


SPLIT_SETTINGS = ("data_dir", "heldout_fraction", "seed")


# Evaluation settings only the study reads (the rest go to EvaluationConfig).
STUDY_EVAL_KEYS = ("held_out", "sample_articles", "sample_seed")


def check_study_config(config: StudyConfig) -> None:
    """ConfigError naming the first invalid setting of a study (the per-cell train and evaluate
    settings are checked by TrainConfig and EvaluationConfig themselves)."""
    from polyqa.encoders import check_model_name
    from polyqa.evaluate.config import EvaluationConfig
    from polyqa.train.config import TrainConfig

    for name in ("name", "results_dir", "work_dir"):
        if not getattr(config, name).strip():
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
    for i, extra in enumerate(config.extra_cells):
        check_extra_cell(f"extra_cells[{i}]", extra)
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
    if "hard_negatives" in config.train or "negatives" in config.train:
        raise ConfigError("train: hard_negatives and negatives are set per cell",
                          todo="use extra_cells with hard_negatives: mined and a mining section")
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
    mined = [i for i, extra in enumerate(config.extra_cells) if MINED in as_list(extra.get("hard_negatives"))]
    if mined and config.mining is None:
        raise ConfigError(f"extra_cells[{mined[0]}]: hard_negatives: mined needs a mining section",
                          todo="add mining: {model: minilm} (polyqa mine-negatives settings)")


def miner_settings(config: StudyConfig) -> Any:
    """The study's ``mining`` section as MinerSettings; candidates are what training retrieves
    (``train.positive``) unless the section says otherwise."""
    from polyqa.export.mining import MinerSettings

    mining = config.mining
    if not isinstance(mining, Mapping) or "model" not in mining:
        raise ConfigError(f"mining must be a mapping of polyqa mine-negatives settings with a model, got {mining!r}")
    check_keys(MinerSettings, mining, section="mining")
    return MinerSettings(**{"positive": config.train.get("positive", "passage"), **mining})


EXTRA_CELL_KEYS = ("n_languages", "strategy", "alpha", "languages_per_batch", "hard_negatives", "seeds")


def as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_extra_cell(name: str, extra: Any) -> None:
    """ConfigError unless ``extra`` is {n_languages, strategy[, alpha, languages_per_batch, seeds]},
    each one value or a list."""
    if not isinstance(extra, Mapping) or set(extra) - set(EXTRA_CELL_KEYS) \
            or not {"n_languages", "strategy"} <= set(extra):
        raise ConfigError(f"{name} must be a mapping of {list(EXTRA_CELL_KEYS)} with n_languages and strategy, "
                          f"got {extra!r}")
    for n in as_list(extra["n_languages"]):
        check_int(f"{name}.n_languages", n, minimum=1)
    for strategy in as_list(extra["strategy"]):
        check_choice(f"{name}.strategy", strategy, STRATEGIES)
    for alpha in as_list(extra.get("alpha")):
        check_number(f"{name}.alpha", alpha, minimum=0.0, maximum=1.0, optional=True)
    for cap in as_list(extra.get("languages_per_batch")):
        check_int(f"{name}.languages_per_batch", cap, minimum=1, optional=True)
    for negatives in as_list(extra.get("hard_negatives")):
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
