"""What a training run leaves behind besides the weights.

- ``polyqa_training.json`` beside the model (read by the evaluation code: its
  ``languages`` split seen from unseen languages), and a ``polyqa training``
  section in the model card (also as a ``polyqa:`` mapping in its front matter).
- ``run_record.json`` in the output folder (also ``run_record-<run_id>.json``):
  examples and tokens seen, steps, wall seconds, throughput, peak memory,
  skipped rows and all settings, for the language-scaling study. A resumed
  run's ``totals`` add up every run so far. ``skipped_rows-<run_id>.arrow``
  lists the rows not used (quarantine schema: shard file, row, field, reason).

No torch here: the trainer's measurements come in as ``RunStats``.
"""

from __future__ import annotations

import hashlib
import json
import resource
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from polyqa import __version__
from polyqa import languages as L
from polyqa import storage
from polyqa.batching.pairs import TrainingPairs
from polyqa.batching.planner import HYBRID, decode_flat_index
from polyqa.corpus import reader
from polyqa.encoders import resolve_encoder
from polyqa.train.config import TrainConfig

TRAINING_INFO_FILE = "polyqa_training.json"
RUN_RECORD_FILE = "run_record.json"


@dataclass
class RunStats:
    """What one run measured (this process's counts; ``num_processes`` shared the work)."""

    global_step_start: int
    global_step: int
    examples_seen: int
    tokens_seen: int
    wall_seconds: float
    train_runtime_seconds: float
    peak_rss_bytes: int
    num_processes: int = 1
    batch_kinds: dict[str, int] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    batch_log: list[list[int]] | None = None  # flat pair indices of every trained batch, when recorded

    @property
    def steps(self) -> int:
        return self.global_step - self.global_step_start


def corpus_manifest_sha256(corpus_dir: str | Path) -> tuple[str, str]:
    """(sha256, what was hashed): the corpus's manifest.json, or else its shard list (path and size)."""
    root = storage.as_path(corpus_dir)
    manifest = root / "manifest.json"
    if manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest(), "manifest.json"
    lines = []
    for lang in reader.corpus_languages(root):
        for path in reader.shard_paths(root, lang):
            lines.append(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest(), "shard-list"


def iso_languages(langs: list[str]) -> list[str]:
    """ISO 639-1 codes where they exist (the model card's ``language``), else the NLLB code."""
    return [L.iso639_1(code) or code for code in langs]


def training_info(config: TrainConfig, pairs: TrainingPairs, extra: dict[str, Any]) -> dict[str, Any]:
    """The content of ``polyqa_training.json``."""
    sha, hashed = corpus_manifest_sha256(config.corpus)
    return {
        "polyqa_version": __version__,
        "languages": list(pairs.languages),
        "strategy": config.strategy,
        "alpha": config.alpha if config.strategy == HYBRID else None,
        "languages_per_batch": config.languages_per_batch,
        "language_weights": config.language_weights,
        "positive": config.positive,
        "hard_negatives": config.hard_negatives,
        "negatives": config.negatives,
        "corpus": storage.display(config.corpus),
        "corpus_manifest_sha256": sha,
        "corpus_manifest_hashed": hashed,
        "base_model": config.base_model,
        "base_model_path": resolve_encoder(config.base_model),
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


def write_training_info(model_dir: Path, info: dict[str, Any]) -> None:
    """``polyqa_training.json`` and the model card section, in a saved model folder."""
    (model_dir / TRAINING_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    write_model_card_section(model_dir, info)


def write_model_card_section(model_dir: Path, info: dict[str, Any]) -> None:
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


def previous_totals(output_dir: Path, resume_from: str | None, step_start: int) -> dict[str, Any]:
    """The totals of the runs this one resumes (empty for a fresh run or a record newer than the checkpoint)."""
    path = Path(output_dir) / RUN_RECORD_FILE
    if not resume_from or not path.is_file():
        return {}
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    if int(earlier.get("global_step", -1)) > step_start:
        return {}  # that record is of a run past this checkpoint: counting it would count steps twice
    return earlier.get("totals") or {}


def decode_batches(batch_log: list[list[int]], pairs: TrainingPairs) -> list[list[list[str]]]:
    """Trained batches as ``[qa_id, question language, positive language]`` triples."""
    k = len(pairs.languages)
    batches = []
    for flat in batch_log:
        qa, a, b = decode_flat_index(flat, k)
        batches.append(
            [[pairs.qa_ids[int(i)].as_py(), pairs.languages[x], pairs.languages[y]]
             for i, x, y in zip(qa.tolist(), a.tolist(), b.tolist())]
        )
    return batches


def run_record(
    config: TrainConfig,
    pairs: TrainingPairs,
    stats: RunStats,
    info: dict[str, Any],
    runtime: dict[str, Any],
    *,
    run_id: str,
    started: datetime,
    resumed_from: str | None,
    batches_per_epoch: int,
    previous: dict[str, Any],
) -> dict[str, Any]:
    """The run record: this run's counts, the totals of every run so far, and all settings."""
    wall, world = stats.wall_seconds, stats.num_processes
    totals = {
        "runs": int(previous.get("runs", 0)) + 1,
        "steps": int(previous.get("steps", 0)) + stats.steps,
        "examples_seen": int(previous.get("examples_seen", 0)) + stats.examples_seen * world,
        "tokens_seen": int(previous.get("tokens_seen", 0)) + stats.tokens_seen * world,
        "wall_seconds": float(previous.get("wall_seconds", 0.0)) + wall,
    }
    losses = [e["loss"] for e in stats.log_history if "loss" in e]
    record = {
        "run_id": run_id,
        "started_utc": started.isoformat(),
        "finished_utc": datetime.now(timezone.utc).isoformat(),
        "model_dir": str(config.model_dir),
        "resumed_from": resumed_from,
        "global_step_start": stats.global_step_start,
        "global_step": stats.global_step,
        "steps": stats.steps,
        "examples_seen": stats.examples_seen,
        "tokens_seen": stats.tokens_seen,
        "wall_seconds": wall,
        "train_runtime_seconds": stats.train_runtime_seconds,
        "examples_per_second": stats.examples_seen / wall if wall > 0 else None,
        "tokens_per_second": stats.tokens_seen / wall if wall > 0 else None,
        "peak_rss_bytes": stats.peak_rss_bytes,
        "process_max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cuda_max_allocated_bytes": runtime.get("cuda_max_allocated_bytes"),
        "device": runtime.get("device"),
        "torch_threads": runtime.get("torch_threads"),
        "num_processes": world,  # examples/tokens above are this process's; totals scale by it
        "totals": totals,
        "batches_per_epoch": batches_per_epoch,
        "batch_kinds": dict(stats.batch_kinds),
        "training_loss_first": losses[0] if losses else None,
        "training_loss_last": losses[-1] if losses else None,
        "log_history": stats.log_history,
        "questions": pairs.num_questions,
        "usable_rows": pairs.usable_counts(),
        "skipped_rows": pairs.skipped,
        "skipped_rows_total": pairs.skipped_total,
        "settings": asdict(config),
        "training_info": info,
        "versions": runtime.get("versions"),
    }
    if stats.batch_log is not None:
        record["batches"] = decode_batches(stats.batch_log, pairs)
    return record


def write_run_record(output_dir: Path, record: dict[str, Any], pairs: TrainingPairs) -> Path:
    """Write the skipped rows (if any) and the record, as ``run_record.json`` and under its run id."""
    out = Path(output_dir)
    if pairs.skipped_total:
        import pyarrow.feather as feather

        skipped_path = out / f"skipped_rows-{record['run_id']}.arrow"
        feather.write_feather(pairs.skipped_table(), str(skipped_path), compression="zstd")
        record["skipped_rows_file"] = str(skipped_path)
    text = json.dumps(record, indent=2, default=str) + "\n"
    (out / f"run_record-{record['run_id']}.json").write_text(text, encoding="utf-8")
    (out / RUN_RECORD_FILE).write_text(text, encoding="utf-8")
    return out / RUN_RECORD_FILE


def summary_markdown(record: dict[str, Any]) -> str:
    """A training run in a few lines: what was trained on, how long, and what was left out (and why)."""
    settings = record.get("settings") or {}
    skipped = record.get("skipped_rows") or {}
    reasons: dict[str, int] = {}
    for per_reason in skipped.values():
        for reason, count in per_reason.items():
            reasons[reason] = reasons.get(reason, 0) + int(count)
    seconds = record.get("wall_seconds") or 0.0
    lines = [
        f"# Training run `{record.get('run_id')}`",
        "",
        f"- model: `{record.get('model_dir')}` from `{settings.get('base_model')}`",
        f"- corpus: `{settings.get('corpus')}`, languages {', '.join(f'`{x}`' for x in (record.get('usable_rows') or {}))}",
        f"- batches: `{settings.get('strategy')}`"
        + (f" (alpha {settings.get('alpha')})" if settings.get("strategy") == HYBRID else "")
        + f", batch size {settings.get('batch_size')}, kinds {record.get('batch_kinds')}",
        f"- steps {record.get('steps')} (global step {record.get('global_step')}), "
        f"{record.get('examples_seen')} examples, {record.get('tokens_seen')} tokens in {seconds:.1f} s "
        f"({(record.get('examples_per_second') or 0):.1f} examples/s)",
        f"- loss {record.get('training_loss_first')} -> {record.get('training_loss_last')}",
        f"- questions {record.get('questions')}; usable rows per language {record.get('usable_rows')}",
        "- rows skipped: " + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) if reasons else "none"),
    ]
    if record.get("resumed_from"):
        lines.append(f"- resumed from `{record['resumed_from']}`")
    return "\n".join(lines) + "\n"
