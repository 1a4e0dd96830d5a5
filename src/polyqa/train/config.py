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
from polyqa.batching.planner import HYBRID, BatchingConfig

LOSSES = ("mnrl", "cached-mnrl")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
REQUIRED = ("corpus", "output_dir")
# Settings that name files or folders: ``~``, ``$POLYQA_HOME``, ``$POLYQA_DATA_DIR`` and other
# variables are expanded (``base_model`` may also be an alias or a hub id, which expansion leaves alone).
PATH_FIELDS = ("corpus", "output_dir", "base_model", "resume")


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
    hard_negatives: bool = False  # neighbouring sentence / next passage of the same article
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

    def __post_init__(self) -> None:
        # Every construction passes here (keywords, from_dict, from_yaml, load, dataclasses.replace),
        # so paths are expanded the same way whoever builds the config.
        for name in PATH_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, Path)):
                setattr(self, name, paths.expand(value))
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 for in-batch negatives, got {self.batch_size}")
        if self.temperature is not None:
            if self.temperature <= 0:
                raise ValueError(f"temperature must be > 0, got {self.temperature}")
            self.scale = 1.0 / float(self.temperature)
        if isinstance(self.languages, str):
            self.languages = [s.strip() for s in self.languages.split(",") if s.strip()]
        self.batching  # validates strategy, alpha, cap, weights

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
            raise ValueError(f"{source}: unknown setting(s) {unknown}; known: {sorted(known)}")
        missing = [name for name in REQUIRED if not data.get(name)]
        if missing:
            raise ValueError(f"{source}: missing required setting(s) {missing}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from exc

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


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of settings in a YAML file; errors name the file."""
    import yaml

    path = Path(paths.expand(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data
