"""sentence-transformers wiring: model, loss, training arguments, the trainer subclass, device and precision.

Everything here imports torch / transformers / sentence-transformers lazily,
inside the functions, so importing ``polyqa.train`` stays light.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

from polyqa.batching.planner import MONO, XX, XY, decode_flat_index
from polyqa.encoders import load_sentence_transformer
from polyqa.train.config import TrainConfig

log = logging.getLogger(__name__)

MIXED = "mixed"  # a trained batch that matches no strategy (should not happen)


def load_model(config: TrainConfig):
    """The base model: safetensors weights only, remote code only when the config opts in."""
    model = load_sentence_transformer(config.base_model, device=device(), trust_remote_code=config.trust_remote_code)
    if config.max_seq_length:
        limit = position_limit(model)
        if limit is not None and config.max_seq_length > limit:
            # Longer inputs would index past the position embeddings and crash mid-training.
            log.warning("max_seq_length %d > the %d positions %s has: using %d", config.max_seq_length, limit,
                        config.base_model, limit)
        model.max_seq_length = int(min(config.max_seq_length, limit or config.max_seq_length))
    if config.prompts:
        model.prompts = {**(model.prompts or {}), "query": config.query_prompt, "passage": config.passage_prompt}
    return model


# Models whose position ids start after the padding index (the first pad_token_id + 1 positions are unused).
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text")


def position_limit(model) -> int | None:
    """Tokens the model's position embeddings can hold, when its config says (None otherwise)."""
    auto = getattr(model[0], "auto_model", None) if len(model) else None
    cfg = getattr(auto, "config", None)
    positions = getattr(cfg, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    if getattr(cfg, "model_type", None) in OFFSET_POSITIONS:
        positions -= int(getattr(cfg, "pad_token_id", 1) or 0) + 1
    return positions


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


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def device() -> str | None:
    return "cuda" if cuda_available() else None


def precision_flags(precision: str) -> dict[str, bool]:
    """``bf16`` / ``fp16`` trainer flags: mixed precision only on CUDA; ``auto`` prefers bf16."""
    import torch

    if not torch.cuda.is_available() or precision == "fp32":
        if precision in ("bf16", "fp16") and not torch.cuda.is_available():
            log.warning("precision %s asked for but CUDA is not available: training in fp32", precision)
        return {"bf16": False, "fp16": False}
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def training_arguments(config: TrainConfig, batch_sampler):
    """The trainer's arguments; ``batch_sampler`` is the hybrid batch sampler factory."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    cuda = cuda_available()
    return SentenceTransformerTrainingArguments(
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
        batch_sampler=batch_sampler,
        prompts=config.prompt_map() or None,
        dataloader_num_workers=config.dataloader_num_workers,
        dataloader_pin_memory=cuda,
        dataloader_drop_last=True,
        disable_tqdm=True,
        # On CPU-only machines accelerate needs cpu=True to treat torchrun's processes as one
        # multi-CPU (gloo) job; otherwise each process would train alone.
        use_cpu=not cuda,
        **precision_flags(config.precision),
    )


CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"  # written last: a checkpoint without it was not finished
# Besides the state: the weights, and what the trainer restores on resume (optimizer, scheduler).
CHECKPOINT_FILES = ("modules.json", "optimizer.pt", "scheduler.pt")
INCOMPLETE_PREFIX = "incomplete-"


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why a checkpoint folder cannot be trusted (missing or truncated files), or None when it is complete.

    The trainer writes the weights, optimizer and scheduler first and ``trainer_state.json`` last, none
    atomically, so a run killed while saving leaves any prefix of them. Each file is checked for
    presence and for a complete container (safetensors header, torch zip directory, JSON).
    """
    import json
    import zipfile

    folder = Path(folder)
    if not folder.is_dir():
        return "not a folder"
    missing = [name for name in (TRAINER_STATE, *CHECKPOINT_FILES) if not (folder / name).is_file()]
    weights = sorted(folder.rglob("*.safetensors"))
    if not weights:
        missing.append("model.safetensors")
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        state = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
        step = int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"{TRAINER_STATE} is not a complete trainer state"
    match = CHECKPOINT_RE.match(folder.name)
    if match and int(match.group(1)) != step:
        return f"{TRAINER_STATE} says global step {step}, the folder name says {match.group(1)}"
    for path in weights:
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as handle:
                handle.keys()
        except Exception as exc:  # safetensors raises its own error types for a truncated file
            return f"{path.relative_to(folder)} is truncated or damaged ({type(exc).__name__})"
    for name in ("optimizer.pt", "scheduler.pt"):
        # torch.save writes a zip whose directory comes last: a cut file has none.
        if not zipfile.is_zipfile(folder / name):
            return f"{name} is truncated or damaged"
    return None


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """``checkpoint-N`` folders, newest (largest N) first."""
    if not checkpoint_dir.is_dir():
        return []
    found = [p for p in checkpoint_dir.iterdir() if p.is_dir() and CHECKPOINT_RE.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_RE.match(p.name).group(1)), reverse=True)


def find_resume_checkpoint(config: TrainConfig) -> str | None:
    """The checkpoint to resume from: ``resume`` itself when a path, the newest complete one when true, else None.

    Incomplete checkpoints (a run killed while saving) are skipped with a warning; a checkpoint
    named explicitly must be complete.
    """
    from polyqa.errors import PolyqaError

    if not config.resume:
        return None
    if isinstance(config.resume, str):
        path = Path(config.resume)
        if not path.is_dir():
            raise FileNotFoundError(f"resume: checkpoint folder {path} does not exist")
        problem = checkpoint_problem(path)
        if problem:
            raise PolyqaError(f"resume: incomplete checkpoint ({problem})", where=str(path),
                              todo="resume from another checkpoint (resume: true picks the newest complete one)")
        return str(path)
    for path in list_checkpoints(config.checkpoint_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        log.warning("skipping incomplete checkpoint %s (%s): probably a run stopped while saving it; "
                    "resuming from an older one", path, problem)
    return None


def incomplete_checkpoints(config: TrainConfig, resume_from: str | None) -> list[Path]:
    """Checkpoints newer than the resume point that are incomplete (to be set aside before training)."""
    start = int(CHECKPOINT_RE.match(Path(resume_from).name).group(1)) if resume_from and CHECKPOINT_RE.match(
        Path(resume_from).name) else -1
    return [p for p in list_checkpoints(config.checkpoint_dir)
            if int(CHECKPOINT_RE.match(p.name).group(1)) > start and checkpoint_problem(p)]


def set_aside(checkpoint: Path) -> Path:
    """Rename an incomplete checkpoint so the trainer neither resumes from nor rotates it (kept for inspection)."""
    import time

    target = checkpoint.with_name(f"{INCOMPLETE_PREFIX}{checkpoint.name}-{time.strftime('%Y%m%dT%H%M%S')}")
    checkpoint.rename(target)
    log.warning("incomplete checkpoint %s set aside as %s", checkpoint, target.name)
    return target


def checkpoint_step(checkpoint: str | None) -> int:
    """The global step a checkpoint was saved at (0 without one)."""
    if not checkpoint:
        return 0
    import json

    state = json.loads((Path(checkpoint) / TRAINER_STATE).read_text(encoding="utf-8"))
    return int(state.get("global_step", 0))


def rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def batch_kind(flat_indices: list[int], num_languages: int) -> str:
    """What a trained batch was, from its pair indices: x-x-mono, x-x, x-y or mixed."""
    _, a, b = decode_flat_index(flat_indices, num_languages)
    if len(set(a.tolist()) | set(b.tolist())) == 1:
        return MONO
    if (a != b).all():
        return XY
    return XX if (a == b).all() else MIXED


def trainer_classes():
    """(collator, trainer subclass, memory callback), built lazily so importing polyqa.train stays light."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
    from transformers import TrainerCallback

    from polyqa.batching.st_sampler import PAIR_INDEX_COLUMN

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
            self.peak_rss = rss_bytes()

        def on_step_end(self, args, state, control, **kwargs):
            self.peak_rss = max(self.peak_rss, rss_bytes())
            if state.global_step % max(1, args.logging_steps) == 0:
                log.info("step %d/%d", state.global_step, state.max_steps)

    return PairIndexCollator, PolyqaTrainer, MemoryCallback


def runtime_info() -> dict[str, Any]:
    """Device, threads, CUDA peak memory and library versions, for the run record."""
    import platform

    import sentence_transformers
    import torch
    import transformers

    from polyqa import __version__

    cuda = torch.cuda.is_available()
    return {
        "cuda_max_allocated_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "device": "cuda" if cuda else "cpu",
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "polyqa": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "python": platform.python_version(),
        },
    }
