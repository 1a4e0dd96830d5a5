"""``TrainConfig``: every setting of a training run, from a YAML file, a mapping or keywords.

The CLI (``polyqa train``), the Prefect flow and the study all build their
config through this class (``TrainConfig.load`` for a file plus overrides), so
a new setting reaches all of them without edits elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from polyqa import paths
from polyqa.batching.pairs import MINED, POSITIVE_KINDS
from polyqa.batching.planner import HYBRID, STRATEGIES, BatchingConfig
from polyqa.splits import read_titles
from polyqa.errors import (
    ConfigError,
    construct_config,
    check_bool,
    check_choice,
    check_int,
    check_languages,
    check_number,
)

LOSSES = ("mnrl", "cached-mnrl")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
REQUIRED = ("corpus", "output_dir")
# Settings that name files or folders: ``~``, ``$POLYQA_HOME``, ``$POLYQA_DATA_DIR`` and other
# variables are expanded (``base_model`` may also be an alias or a hub id, which expansion leaves alone).
PATH_FIELDS = ("corpus", "output_dir", "base_model", "resume", "exclude_titles_file", "negatives")
HELDOUT_FILE = "heldout_articles.txt"  # in output_dir: the titles training left out (evaluate on them)


@dataclass
class TrainConfig:
    """Everything a training run needs; a YAML config maps onto these fields one to one."""

    corpus: str
    output_dir: str
    languages: list[str] | None = None  # NLLB or ISO codes; None: every language of the corpus
    strategy: str = HYBRID  # x-x-mono | x-x | x-y | hybrid
    alpha: float = 0.5  # hybrid: share of x-x-mono batches
    languages_per_batch: int | None = None  # cap on distinct languages in one batch; None: all
    language_weights: str | dict[str, float] = "uniform"  # uniform | size | {lang: weight}
    positive: str = "passage"  # passage | sentence (the answer sentence, as LAReQA retrieves)
    # true: the neighbouring sentence / next passage of the same article; "mined": the negatives of
    # polyqa mine-negatives in ``negatives`` (a folder mined from this corpus)
    hard_negatives: bool | str = False
    negatives: str | None = None
    # Skip rows whose quality_pass is false. Off only for corpora whose flags say nothing useful,
    # e.g. the demo corpus of the random tiny model, whose babble fails every check.
    quality_filter: bool = True
    base_model: str = "minilm"  # an alias of polyqa.encoders (minilm, xlm-r, labse, ...), HF id or local path
    batch_size: int = 32  # per device
    max_steps: int | None = None  # overrides epochs when set
    epochs: float = 1.0
    batches_per_epoch: int | None = None  # default: usable questions // batch_size
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    warmup_steps: float = 0.0  # steps, or a ratio of the total when < 1
    scale: float = 20.0  # cosine similarity scale = 1 / temperature
    temperature: float | None = None  # when set, scale = 1 / temperature
    max_seq_length: int | None = 256
    prompts: bool = False  # prefix "query: " / "passage: "
    query_prompt: str = "query: "
    passage_prompt: str = "passage: "
    loss: str = "mnrl"  # mnrl | cached-mnrl
    mini_batch_size: int = 32  # cached-mnrl: GradCache mini batch
    gather_across_devices: bool = False
    seed: int = 0
    checkpoint_steps: int = 500
    save_total_limit: int | None = 2
    resume: bool | str = False  # true: newest checkpoint in output_dir/checkpoints; or a path
    logging_steps: int = 10
    precision: str = "auto"  # auto (bf16/fp16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    dataloader_num_workers: int = 0
    torch_threads: int | None = None  # CPU threads for torch; None: torch's default (1 helps on busy machines)
    record_batches: bool = False  # keep every trained batch's (qa_id, langs) in the run record
    # Held-out articles: rows of these titles are never trained on (skipped, counted), so the model
    # can be evaluated on them (polyqa evaluate --benchmark polyqa-corpus --articles-file ...).
    exclude_titles: list[str] | None = None
    exclude_titles_file: str | None = None  # one title per line ('#' comments) or a JSON list
    # Or let training pick them: this share of the corpus's articles, drawn with heldout_seed.
    # All excluded titles are written to output_dir/heldout_articles.txt.
    heldout_fraction: float | None = None
    heldout_seed: int = 0
    trust_remote_code: bool = False  # run Python code shipped with a hub model (off: built-in architectures only)

    def __post_init__(self) -> None:
        # Every construction passes here (keywords, from_dict, from_yaml, load, dataclasses.replace),
        # so paths are expanded the same way whoever builds the config.
        for name in PATH_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, Path)):
                setattr(self, name, paths.expand(value))
        if isinstance(self.languages, str):
            self.languages = [s.strip() for s in self.languages.split(",") if s.strip()]
        self._check()
        if self.temperature is not None:
            self.scale = 1.0 / float(self.temperature)
        self.batching  # noqa: B018 (builds the planner's config: its own checks too)

    def _check(self) -> None:
        """ConfigError naming the first setting out of range (YAML numbers given as text are converted)."""
        for name in REQUIRED:
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ConfigError(f"{name} must be a path, got {getattr(self, name)!r}")
        check_languages("languages", self.languages)
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("loss", self.loss, LOSSES)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("positive", self.positive, POSITIVE_KINDS)
        self.alpha = check_number("alpha", self.alpha, minimum=0.0, maximum=1.0)
        check_int("languages_per_batch", self.languages_per_batch, minimum=1, optional=True)
        check_language_weights(self.language_weights)
        check_int("batch_size", self.batch_size, minimum=2)  # in-batch negatives need another pair
        check_int("max_steps", self.max_steps, minimum=1, optional=True)
        self.epochs = check_number("epochs", self.epochs, above=0.0)
        check_int("batches_per_epoch", self.batches_per_epoch, minimum=1, optional=True)
        self.learning_rate = check_number("learning_rate", self.learning_rate, above=0.0)
        self.weight_decay = check_number("weight_decay", self.weight_decay, minimum=0.0)
        self.warmup_steps = check_number("warmup_steps", self.warmup_steps, minimum=0.0)
        self.scale = check_number("scale", self.scale, above=0.0)
        self.temperature = check_number("temperature", self.temperature, above=0.0, optional=True)
        check_int("max_seq_length", self.max_seq_length, minimum=1, optional=True)
        check_int("mini_batch_size", self.mini_batch_size, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_int("checkpoint_steps", self.checkpoint_steps, minimum=1)
        check_int("save_total_limit", self.save_total_limit, minimum=1, optional=True)
        check_int("logging_steps", self.logging_steps, minimum=1)
        check_int("dataloader_num_workers", self.dataloader_num_workers, minimum=0)
        check_int("torch_threads", self.torch_threads, minimum=1, optional=True)
        if self.hard_negatives != MINED:
            check_bool("hard_negatives", self.hard_negatives)
        elif not isinstance(self.negatives, str) or not self.negatives.strip():
            raise ConfigError("hard_negatives: mined needs negatives, the folder polyqa mine-negatives wrote",
                              todo="set negatives: FOLDER (mined from this corpus)")
        for name in ("quality_filter", "prompts", "gather_across_devices", "record_batches",
                     "trust_remote_code"):
            check_bool(name, getattr(self, name))
        for name in ("query_prompt", "passage_prompt"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be text, got {getattr(self, name)!r}")
        if not isinstance(self.resume, (bool, str)):
            raise ConfigError(f"resume must be true, false or a checkpoint folder, got {self.resume!r}")
        if self.exclude_titles is not None and (
                not isinstance(self.exclude_titles, list) or not all(isinstance(t, str) for t in self.exclude_titles)):
            raise ConfigError(f"exclude_titles must be a list of article titles, got {self.exclude_titles!r}")
        if self.exclude_titles_file is not None and not isinstance(self.exclude_titles_file, str):
            raise ConfigError(f"exclude_titles_file must be a path, got {self.exclude_titles_file!r}")
        self.heldout_fraction = check_number("heldout_fraction", self.heldout_fraction, above=0.0, below=1.0,
                                             optional=True)
        check_int("heldout_seed", self.heldout_seed, minimum=0)
        from polyqa.encoders import check_model_name

        check_model_name(self.base_model, "base_model")

    def excluded_titles(self) -> set[str]:
        """The titles given to leave out (``exclude_titles`` and ``exclude_titles_file``), not the drawn ones."""
        titles = set(self.exclude_titles or ())
        if self.exclude_titles_file:
            titles |= read_titles(self.exclude_titles_file)
        return titles

    @property
    def batching(self) -> BatchingConfig:
        return BatchingConfig(
            strategy=self.strategy,
            alpha=self.alpha,
            languages_per_batch=self.languages_per_batch,
            language_weights=self.language_weights,
            seed=self.seed,
            batches_per_epoch=self.batches_per_epoch,
        )

    @property
    def model_dir(self) -> Path:
        return Path(self.output_dir) / "model"

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.output_dir) / "checkpoints"

    def prompt_map(self) -> dict[str, str]:
        """Column -> prompt for the trainer (empty when prompts are off)."""
        if not self.prompts:
            return {}
        return {"anchor": self.query_prompt, "positive": self.passage_prompt, "negative": self.passage_prompt}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """A config from settings; errors name ``source`` (a file, a flow, a study cell)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            import difflib

            close = sorted({m for key in unknown for m in difflib.get_close_matches(key, known, n=1)})
            raise ConfigError(f"unknown setting(s) {unknown}", where=source,
                              todo=(f"did you mean {close}? " if close else "") + f"known: {sorted(known)}")
        missing = [name for name in REQUIRED if not data.get(name)]
        if missing:
            raise ConfigError(f"missing required setting(s) {missing}", where=source)
        return construct_config(cls, data, source)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        source: str | None = None,
        **options: Any,
    ) -> TrainConfig:
        """The settings of a YAML file (if any), then ``overrides``, then ``options``.

        A value of None in ``overrides`` or ``options`` means "not given" and keeps
        the file's value (an unset command-line option, an empty flow parameter).
        Relative paths are relative to the working directory, like every polyqa
        command's paths.
        """
        data: dict[str, Any] = {}
        if path is not None:
            data = read_yaml(path)
        for extra in (overrides or {}, options):
            data.update({k: v for k, v in extra.items() if v is not None})
        return cls.from_dict(data, source=source or (str(path) if path is not None else "config"))

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        return cls.load(path, overrides)


def check_language_weights(weights: object) -> None:
    if isinstance(weights, str):
        check_choice("language_weights", weights, ("uniform", "size"))
        return
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigError(f"language_weights must be uniform, size or a mapping {{language: weight}}, got {weights!r}")
    check_languages("language_weights", list(weights))
    values = [check_number(f"language_weights[{lang}]", w, minimum=0.0) for lang, w in weights.items()]
    if not any(values):
        raise ConfigError("language_weights: every weight is 0")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of settings in a YAML file; errors name the file."""
    import yaml

    path = Path(paths.expand(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=str(path),
                          todo="save the config as UTF-8") from None
    except IsADirectoryError:
        raise ConfigError("a folder where a YAML config file is expected", where=str(path),
                          todo="pass the config file") from None
    except FileNotFoundError:
        raise ConfigError("config file not found", where=str(path), todo="check the path") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise ConfigError(f"not valid YAML ({first})", where=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of settings, got {type(data).__name__}", where=str(path))
    return data
