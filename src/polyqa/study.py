"""The language-scaling study: how does zero-shot retrieval change as training
batches span more languages, and what does each step cost?

A study is a grid of cells: (number of training languages, batch strategy,
languages-per-batch cap, seed). Every cell trains the same base model for the
same number of steps (so cells are comparable) on the first N languages of a
configured order, then evaluates zero-shot on the configured benchmarks,
keeping languages seen in training apart from unseen ones. Each cell is cached
under the hash of everything that determines its result (a record in
``results_dir/cells/``): a rerun skips finished cells, so a study can be
continued over several runs, and on another machine from committed results.

Outputs in ``results_dir``: ``cells.parquet`` and ``cells.csv`` (one row per
cell), PNG plots, and ``REPORT.md`` stating the findings with their numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from polyqa import paths
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


def cell_record_path(config: "StudyConfig", cell: "Cell", key: str) -> Path:
    """Where a finished cell's row is kept: in the results folder, so a study can be continued
    on another machine from the committed results alone."""
    return Path(paths.expand(config.results_dir)) / CELLS_DIR / f"{cell.label}-{key}.json"


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
    base_model: str = "minilm"
    language_order: list[str] = field(default_factory=list)  # first N are trained on
    unseen: list[str] = field(default_factory=list)  # never trained on; must not be in the order
    language_counts: list[int] = field(default_factory=lambda: [1, 2, 4])
    strategies: list[str] = field(default_factory=lambda: [MONO, XY, HYBRID])
    languages_per_batch: list[int | None] = field(default_factory=lambda: [None])
    seeds: list[int] = field(default_factory=lambda: [0])
    # Extra seeds for selected cells: [{n_languages: 4, strategy: hybrid, seeds: [1, 2]}]
    seed_cells: list[dict[str, Any]] = field(default_factory=list)
    include_zero_shot: bool = True  # evaluate the untrained base model as a reference row
    train: dict[str, Any] = field(default_factory=dict)  # polyqa.train.TrainConfig settings
    evaluate: list[dict[str, Any]] = field(default_factory=list)  # [{benchmark, data_dir, ...}]
    # Translation cost of an imported corpus is estimated from its English text:
    # NLLB tokens ~ words * tokens_per_word, seconds = tokens / tokens_per_second.
    translation_estimate: dict[str, float] = field(
        default_factory=lambda: {"tokens_per_word": 1.35, "tokens_per_second": 150.0}
    )
    notes: str = ""  # what the reader must know about this run (scale, model); printed in the report

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
        too_many = [n for n in self.language_counts if n < 1 or n > len(self.language_order)]
        if too_many:
            raise ValueError(
                f"study {self.name}: language counts {too_many} outside 1..{len(self.language_order)}"
            )
        if not self.evaluate:
            raise ValueError(f"study {self.name}: no benchmarks under 'evaluate'")

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
    check_model_name(config.base_model, "base_model")
    for name in ("language_counts", "strategies", "languages_per_batch", "seeds", "seed_cells", "evaluate"):
        if not isinstance(getattr(config, name), list):
            raise ConfigError(f"{name} must be a list, got {getattr(config, name)!r}")
    if not config.language_order:
        raise ConfigError("language_order must list at least one language")
    for n in config.language_counts:
        check_int("language_counts[]", n, minimum=1)
    for cap in config.languages_per_batch:
        check_int("languages_per_batch[]", cap, minimum=1, optional=True)
    for seed in config.seeds:
        check_int("seeds[]", seed, minimum=0)
    for i, extra in enumerate(config.seed_cells):
        if not isinstance(extra, Mapping) or set(extra) - {"n_languages", "strategy", "seeds"} \
                or not {"n_languages", "strategy"} <= set(extra):
            raise ConfigError(f"seed_cells[{i}] must be {{n_languages, strategy, seeds}}, got {extra!r}")
        check_int(f"seed_cells[{i}].n_languages", extra["n_languages"], minimum=1)
        check_choice(f"seed_cells[{i}].strategy", extra["strategy"], STRATEGIES)
        for seed in extra.get("seeds") or []:
            check_int(f"seed_cells[{i}].seeds[]", seed, minimum=0)
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


@dataclass(frozen=True)
class Cell:
    n_languages: int  # 0: the untrained base model
    strategy: str  # x-x-mono | x-x | x-y | hybrid | zero-shot
    languages_per_batch: int | None
    seed: int
    languages: tuple[str, ...]

    @property
    def label(self) -> str:
        cap = "all" if self.languages_per_batch is None else str(self.languages_per_batch)
        return f"n{self.n_languages}-{self.strategy}-cap{cap}-seed{self.seed}"


def plan_cells(config: StudyConfig) -> tuple[list[Cell], list[dict[str, Any]]]:
    """The grid's cells, plus the combinations left out and why (never silently)."""
    cells: list[Cell] = []
    skipped: list[dict[str, Any]] = []
    if config.include_zero_shot:
        cells.append(Cell(0, ZERO_SHOT, None, 0, ()))
    extra = {
        (int(c["n_languages"]), str(c["strategy"])): [int(s) for s in c.get("seeds", [])]
        for c in config.seed_cells
    }
    for n in config.language_counts:
        langs = tuple(config.language_order[:n])
        for strategy in config.strategies:
            for cap in config.languages_per_batch:
                why = None
                if strategy in (XY, HYBRID) and n < 2:
                    why = f"{strategy} batches pair different languages: needs at least two"
                elif cap is not None and cap > n:
                    why = f"languages_per_batch {cap} > {n} training languages"
                elif strategy == MONO and cap not in (None, 1):
                    why = "x-x-mono batches hold one language; a cap changes nothing"
                if why:
                    skipped.append({"n_languages": n, "strategy": strategy, "cap": cap, "why": why})
                    continue
                seeds = list(dict.fromkeys(list(config.seeds) + extra.get((n, strategy), [])))
                cells.extend(Cell(n, strategy, cap, s, langs) for s in seeds)
    return cells, skipped


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cell_key(config: StudyConfig, cell: Cell, corpus_fingerprint: str) -> str:
    """Hash of everything that determines a cell's result."""
    return _hash(
        {
            "cell": asdict(cell),
            "base_model": config.base_model,
            "train": config.train if cell.n_languages else None,
            "evaluate": config.evaluate,
            "split": config.split,
            "unseen": config.unseen,
            "corpus": corpus_fingerprint if cell.n_languages else None,
        }
    )


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


def run_cell(
    config: StudyConfig,
    cell: Cell,
    corpus_dir: Path,
    manifest: Manifest,
    heldout_file: Path | None,
    key: str,
) -> dict[str, Any]:
    """Train (unless zero-shot) and evaluate one cell; returns its table row."""
    from polyqa.evaluate.run import EvaluationConfig, run_evaluation
    from polyqa.train import TrainConfig, train_retriever

    cell_dir = Path(paths.expand(config.work_dir)) / "cells" / f"{cell.label}-{key}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {"cell": cell.label, "key": key, **asdict(cell)}
    row["languages"] = ",".join(cell.languages)
    model = config.base_model
    if cell.n_languages:
        settings = {
            **config.train,
            "corpus": str(corpus_dir),
            "output_dir": str(cell_dir / "train"),
            "base_model": config.base_model,
            "languages": list(cell.languages),
            "strategy": cell.strategy,
            "languages_per_batch": cell.languages_per_batch,
            "seed": cell.seed,
            "resume": True,
        }
        result = train_retriever(TrainConfig.from_dict(settings, source=f"study cell {cell.label}"))
        record = result.record
        model = str(result.model_dir)
        row.update(
            train_steps=record.get("steps"),
            train_examples=record.get("examples_seen"),
            train_tokens=record.get("tokens_seen"),
            train_seconds=record.get("wall_seconds"),
            train_examples_per_second=record.get("examples_per_second"),
            train_peak_rss_mb=(record.get("peak_rss_bytes") or 0) / 2**20,
            train_loss_first=record.get("training_loss_first"),
            train_loss_last=record.get("training_loss_last"),
            **pairs_used_and_skipped(record),
        )
        row.update(translation_cost(config, corpus_dir, manifest, cell.languages))
    else:
        row.update(train_steps=0, train_examples=0, train_tokens=0, train_seconds=0.0,
                   train_pairs_used=0, train_pairs_skipped=0, train_pairs_skipped_reasons="{}",
                   translation_segments=0, translation_tokens=0, translation_seconds=0.0,
                   translation_estimated=False)
    seen = set(cell.languages)
    eval_seconds = 0.0
    for spec in config.evaluate:
        spec = dict(spec)
        bench = spec.pop("benchmark")
        data_dir = spec.pop("data_dir", None)
        if data_dir is None:
            continue  # e.g. MLQA-R when no folder is given
        held_out = spec.pop("held_out", False)
        started = time.perf_counter()
        result = run_evaluation(
            EvaluationConfig(
                model=model,
                benchmark=bench,
                data_dir=paths.expand(data_dir),
                output=str(cell_dir / f"eval-{bench}.json"),
                articles_file=str(heldout_file) if held_out and heldout_file else None,
                cache_dir=str(cell_dir / f"eval-{bench}.embcache"),
                **spec,
            )
        )
        eval_seconds += time.perf_counter() - started
        row.update(_metrics_row(bench.replace("-", "_"), result, seen, set(config.unseen)))
    row["eval_seconds"] = eval_seconds
    row["total_seconds"] = float(row.get("train_seconds") or 0) + float(row["translation_seconds"])
    record = cell_record_path(config, cell, key)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(row, indent=2, default=str), "utf-8")
    return row


# ------------------------------------------------------------------ the study


@dataclass
class StudyPlan:
    """Everything cells need, prepared once: corpus, held-out split, the grid and each cell's key."""

    config: StudyConfig
    corpus_dir: Path
    manifest: Manifest
    heldout_file: Path | None
    cells: list[Cell]
    keys: list[str]
    skipped: list[dict[str, Any]]

    def finished(self, i: int) -> dict[str, Any] | None:
        done = cell_record_path(self.config, self.cells[i], self.keys[i])
        return json.loads(done.read_text("utf-8")) if done.exists() else None


def prepare_study(config: StudyConfig) -> StudyPlan:
    """Write the article split, build (or reuse) the training corpus, plan and key the cells."""
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
    corpus_dir, manifest = prepare_corpus(config, train_titles)
    corpus_fp = corpus_fingerprint(corpus_dir, manifest)
    cells, skipped = plan_cells(config)
    keys = [cell_key(config, cell, corpus_fp) for cell in cells]
    return StudyPlan(config, corpus_dir, manifest, heldout_file, cells, keys, skipped)


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
                                            plan.heldout_file, plan.keys[i])

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


def write_results(config: StudyConfig, rows: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from polyqa.study_report import plot_study, render_report

    results_dir = Path(paths.expand(config.results_dir))
    if not rows:
        return
    columns = sorted({k for row in rows for k in row}, key=lambda k: (k not in rows[0], k))
    table = pa.Table.from_pylist([{c: _plain(row.get(c)) for c in columns} for row in rows])
    pq.write_table(table, results_dir / "cells.parquet")
    pacsv.write_csv(table, results_dir / "cells.csv")
    plots = plot_study(rows, config, results_dir)
    (results_dir / "REPORT.md").write_text(render_report(rows, skipped, config, plots), "utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
