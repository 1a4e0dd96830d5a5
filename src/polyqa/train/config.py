"""``TrainConfig``: every setting of a training run, from a YAML file, a mapping or keywords.

The CLI (``polyqa train``), the Prefect flow and the study all build their
config through this class (``TrainConfig.load`` for a file plus overrides), so
a new setting reaches all of them without edits elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from polyqa import paths
from polyqa.batching.pairs import MINED, POSITIVE_KINDS
from polyqa.batching.planner import HYBRID, STRATEGIES, BatchingConfig
from polyqa.splits import read_titles
from polyqa.errors import ConfigError, check_bool, check_choice, check_languages, check_number
from polyqa.settings import Codes, Flag, Location, Number, Whole, build, config, read_yaml, setting

LOSSES = ("mnrl", "cached-mnrl")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
REQUIRED = ("corpus", "output_dir")
# Settings that name files or folders: ``~``, ``$POLYQA_HOME``, ``$POLYQA_DATA_DIR`` and other
# variables are expanded (``base_model`` may also be an alias or a hub id, which expansion leaves alone).
PATH_FIELDS = ("corpus", "output_dir", "base_model", "resume", "exclude_titles_file", "negatives")
HELDOUT_FILE = "heldout_articles.txt"  # in output_dir: the titles training left out (evaluate on them)


@config
class TrainConfig:
    """Everything a training run needs; a YAML config maps onto these settings one to one."""

    corpus: Location = setting(help="corpus folder (build-corpus or import-parallel output), local or a URL")
    output_dir: Location = setting(help="run folder: the model, checkpoints, the run record")
    languages: Codes | None = setting(None, help="NLLB or ISO codes; default: every language of the corpus")
    strategy: Literal[STRATEGIES] = setting(HYBRID, help="batch strategy: " + ", ".join(STRATEGIES))
    alpha: Number = setting(0.5, ge=0, le=1, help="hybrid: share of x-x-mono batches")
    languages_per_batch: Whole | None = setting(
        None, ge=1, help="cap on distinct languages in one batch; default: all")
    language_weights: Any = setting("uniform", help="how often each language is drawn: uniform, size or "
                                    "{language: weight}")
    positive: Literal[POSITIVE_KINDS] = setting(
        "passage", help="the positive: the passage, or the answer sentence (as LAReQA retrieves)")
    hard_negatives: Any = setting(
        False, help="true: the neighbouring sentence / next passage of the same article; mined: the "
        "negatives of polyqa mine-negatives in negatives (a folder mined from this corpus)")
    negatives: Location | None = setting(None, help="a polyqa mine-negatives folder (hard_negatives: mined)")
    # Off only for corpora whose flags say nothing useful, e.g. the demo corpus of the random
    # tiny model, whose babble fails every check.
    quality_filter: Flag = setting(True, help="skip rows whose quality_pass is false")
    base_model: str = setting(
        "minilm", help="an alias of polyqa.encoders (minilm, xlm-r, labse, ...), a hub id or a local folder")
    batch_size: Whole = setting(32, ge=2, help="pairs per batch and device (in-batch negatives need two)")
    max_steps: Whole | None = setting(None, ge=1, help="optimizer steps; overrides epochs when set")
    epochs: Number = setting(1.0, gt=0, help="passes over batches_per_epoch batches")
    batches_per_epoch: Whole | None = setting(None, ge=1, help="default: usable questions // batch_size")
    learning_rate: Number = setting(3e-5, gt=0, help="peak learning rate")
    weight_decay: Number = setting(0.01, ge=0, help="AdamW weight decay")
    warmup_steps: Number = setting(0.0, ge=0, help="warm-up steps, or a share of all steps when below 1")
    scale: Number = setting(20.0, gt=0, help="cosine similarity scale (1 / temperature)")
    temperature: Number | None = setting(None, gt=0, help="when set, scale = 1 / temperature")
    max_seq_length: Whole | None = setting(256, ge=1, help="tokens per text; default: the model's")
    prompts: Flag = setting(False, help='prefix questions with query_prompt and passages with passage_prompt')
    query_prompt: str = setting("query: ", help="the question prefix when prompts is on")
    passage_prompt: str = setting("passage: ", help="the passage prefix when prompts is on")
    loss: Literal[LOSSES] = setting("mnrl", help="mnrl, or cached-mnrl (GradCache: large batches, little memory)")
    mini_batch_size: Whole = setting(32, ge=1, help="cached-mnrl: GradCache mini batch")
    gather_across_devices: Flag = setting(False, help="several GPUs: in-batch negatives from every device")
    seed: Whole = setting(0, ge=0, help="seed of batches and initialisation")
    checkpoint_steps: Whole = setting(500, ge=1, help="save a checkpoint every N steps")
    save_total_limit: Whole | None = setting(2, ge=1, help="checkpoints kept; default: all")
    resume: Any = setting(False, help="true: the newest checkpoint in output_dir/checkpoints; or a checkpoint path")
    logging_steps: Whole = setting(10, ge=1, help="log the loss every N steps")
    precision: Literal[PRECISIONS] = setting(
        "auto", help="auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, bf16 or fp16")
    dataloader_num_workers: Whole = setting(0, ge=0, help="data loader processes")
    torch_threads: Whole | None = setting(
        None, ge=1, help="CPU threads for torch; default: torch's (1 helps on busy machines)")
    record_batches: Flag = setting(False, help="keep every trained batch's (qa_id, langs) in the run record")
    # Held-out articles: rows of these titles are never trained on (skipped, counted), so the model
    # can be evaluated on them (polyqa evaluate --benchmark polyqa-corpus --articles-file ...).
    exclude_titles: Any = setting(None, help="article titles never trained on")
    exclude_titles_file: Location | None = setting(
        None, help="a file of titles never trained on: one per line ('#' comments) or a JSON list")
    # All excluded titles are written to output_dir/heldout_articles.txt.
    heldout_fraction: Number | None = setting(
        None, gt=0, lt=1, help="hold out this share of the corpus's articles, drawn with heldout_seed")
    heldout_seed: Whole = setting(0, ge=0, help="seed of the held-out draw")
    trust_remote_code: Flag = setting(
        False, help="run Python code shipped with a hub model (off: built-in architectures only)")

    def __post_init__(self) -> None:
        # Every construction passes here (keywords, from_dict, from_yaml, load, dataclasses.replace),
        # so paths are expanded the same way whoever builds the config.
        for name in PATH_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, Path)):
                setattr(self, name, paths.expand(value))
        self._check()
        if self.temperature is not None:
            self.scale = 1.0 / float(self.temperature)
        self.batching  # noqa: B018 (builds the planner's config: its own checks too)

    def _check(self) -> None:
        """ConfigError naming the first setting that its declaration alone cannot check."""
        for name in REQUIRED:
            if not getattr(self, name).strip():
                raise ConfigError(f"{name} must be a path, got {getattr(self, name)!r}")
        check_languages("languages", self.languages)
        check_language_weights(self.language_weights)
        if self.hard_negatives != MINED:
            check_bool("hard_negatives", self.hard_negatives)
        elif not isinstance(self.negatives, str) or not self.negatives.strip():
            raise ConfigError("hard_negatives: mined needs negatives, the folder polyqa mine-negatives wrote",
                              todo="set negatives: FOLDER (mined from this corpus)")
        if not isinstance(self.resume, (bool, str)):
            raise ConfigError(f"resume must be true, false or a checkpoint folder, got {self.resume!r}")
        if self.exclude_titles is not None and (
                not isinstance(self.exclude_titles, list) or not all(isinstance(t, str) for t in self.exclude_titles)):
            raise ConfigError(f"exclude_titles must be a list of article titles, got {self.exclude_titles!r}")
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
        return build(cls, data, source)

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
