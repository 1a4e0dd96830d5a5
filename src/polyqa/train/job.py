"""One training run: ``TrainJob`` opens it (config, corpus, batch plan, resume point), ``run()`` trains.

Opening reads and checks everything that can be wrong before a model loads:
the settings (validated once, in ``TrainConfig``), the corpus (aligned,
usable rows per language), the batch plan (enough rows for the batch size
and strategy) and the checkpoint to resume from. ``run()`` then trains and
writes the model, ``polyqa_training.json`` and the run record (see
``polyqa.train.record``). ``train_retriever(config)`` is the same as one call.

One writer per output: ``run()`` holds an OS lock on ``output_dir`` for the whole run
(``polyqa.locking``), so a second run on the same folder is refused and told who holds it; a
killed run's lock goes with its process. Checkpoints are never trusted blindly: one that a run
killed while saving left incomplete (missing or truncated weights, optimizer, scheduler or
``trainer_state.json``) is skipped with a warning and set aside as ``incomplete-checkpoint-N-*``,
and training resumes from the newest complete one.

Held-out articles (``exclude_titles``, ``exclude_titles_file``, ``heldout_fraction``) are never
trained on (their rows are skipped as ``held_out_article``) and listed in
``output_dir/heldout_articles.txt`` for ``polyqa evaluate --benchmark polyqa-corpus --articles-file``.

Resume: transformers' Trainer restores the global step, works out the epoch
and the batches already trained in it, calls ``set_epoch`` on the batch
sampler and wraps it with ``accelerate.skip_first_batches``, which iterates
the sampler from the start of the epoch and drops the first ``k`` batches.
The planner draws each epoch from ``default_rng([seed, epoch])`` alone, so
the replay is exact; it costs about half a millisecond per skipped batch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from polyqa.batching.pairs import TrainingPairs, load_training_pairs
from polyqa.batching.planner import BatchPlanner
from polyqa.corpus.reader import require_corpus
from polyqa.errors import ConfigError
from polyqa.locking import OutputLock
from polyqa.train import record as rec
from polyqa.train import trainer as st
from polyqa.splits import heldout_split, write_titles
from polyqa.train.config import HELDOUT_FILE, TrainConfig

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_dir: Path
    run_record_path: Path
    record: dict[str, Any] = field(default_factory=dict)  # empty on processes other than the main one


class TrainJob:
    """A training run opened once; ``run()`` trains it (once)."""

    def __init__(self, config: TrainConfig, callbacks: list | None = None) -> None:
        self.config = config
        self.callbacks = list(callbacks or [])
        require_corpus(config.corpus)
        self.heldout_titles: list[str] = heldout_titles(config)
        self.pairs: TrainingPairs = load_training_pairs(
            config.corpus, config.languages, positive=config.positive, hard_negatives=config.hard_negatives,
            quality_filter=config.quality_filter, exclude_titles=set(self.heldout_titles) or None,
            mined_negatives=config.negatives,
        )
        pairs = self.pairs
        log.info(
            "corpus %s: %d questions x %d languages %s; usable rows %s; skipped %d %s",
            config.corpus, pairs.num_questions, len(pairs.languages), pairs.languages,
            pairs.usable_counts(), pairs.skipped_total, pairs.skipped,
        )
        # Refuses impossible batch sizes / strategies before any model loads.
        self.planner = BatchPlanner(pairs.usable, pairs.languages, config.batch_size, config.batching,
                                    pairs.separation)
        self.resume_from = st.find_resume_checkpoint(config)
        if config.resume and self.resume_from is None:
            log.info("resume asked for but %s holds no checkpoint: starting fresh", config.checkpoint_dir)
        self.step_start = st.checkpoint_step(self.resume_from)
        self._ran = False

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        callbacks: list | None = None,
        **options: Any,
    ) -> TrainJob:
        """A job from a YAML config and overrides (see ``TrainConfig.load``)."""
        return cls(TrainConfig.load(path, overrides, **options), callbacks=callbacks)

    def run(self) -> TrainResult:
        """Train as the config says; returns where the model and the run record are.

        The output folder is locked for the whole run (one writer per output): a second run on the
        same folder is refused and told who holds it. Under torchrun only process 0 takes the lock.
        """
        if self._ran:
            raise RuntimeError("a TrainJob runs once; open a new one (resume: true) to continue training")
        self._ran = True
        if _is_main_process():
            with OutputLock(self.config.output_dir, "polyqa train"):
                return self._run()
        return self._run()

    def _run(self) -> TrainResult:
        import torch
        import transformers

        from polyqa.batching.st_sampler import BatchSamplerFactory, pair_dataset

        config, pairs = self.config, self.pairs
        started = datetime.now(timezone.utc)
        run_id = started.strftime("%Y%m%dT%H%M%S%fZ")
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if _is_main_process():
            # Under the lock: what a killed run left is looked at again, and set aside when unfinished.
            self.resume_from = st.find_resume_checkpoint(config)
            self.step_start = st.checkpoint_step(self.resume_from)
            for broken in st.incomplete_checkpoints(config, self.resume_from):
                st.set_aside(broken)
            if self.heldout_titles:
                write_titles(out / HELDOUT_FILE, self.heldout_titles)
        transformers.set_seed(config.seed)
        if config.torch_threads:
            torch.set_num_threads(int(config.torch_threads))

        model = st.load_model(config)
        model.model_card_data.language = rec.iso_languages(pairs.languages)
        model.model_card_data.train_datasets = [{"name": f"polyqa corpus {Path(config.corpus).name}"}]
        model.model_card_data.add_tags(["polyqa", f"batching-{config.strategy}"])
        # Widget examples would be the first pair-dataset rows: one question in every language pair.
        model.model_card_data.generate_widget_examples = False

        factory = BatchSamplerFactory(pairs.usable, pairs.languages, config.batching, pairs.separation)
        _, PolyqaTrainer, MemoryCallback = st.trainer_classes()
        memory = MemoryCallback()
        trainer = PolyqaTrainer(
            model=model,
            args=st.training_arguments(config, factory),
            train_dataset=pair_dataset(pairs, keep_index=True),
            loss=st.build_loss(model, config),
            callbacks=[memory, *self.callbacks],
            num_languages=len(pairs.languages),
            record_batches=config.record_batches,
        )
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        if self.resume_from:
            log.info("resuming from %s (global step %d)", self.resume_from, self.step_start)
        wall_start = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=self.resume_from)
        wall = time.perf_counter() - wall_start

        global_step = int(trainer.state.global_step)
        extra: dict[str, Any] = {"steps": global_step, "skipped_rows_total": pairs.skipped_total}
        if self.heldout_titles:
            extra.update(heldout_articles=len(self.heldout_titles),
                         heldout_articles_file=str((out / HELDOUT_FILE).resolve()))
        info = rec.training_info(config, pairs, extra)
        record: dict[str, Any] = {}
        if trainer.is_world_process_zero():
            model.save(str(config.model_dir))
            rec.write_training_info(config.model_dir, info)
            stats = rec.RunStats(
                global_step_start=self.step_start,
                global_step=global_step,
                examples_seen=trainer.examples_seen,
                tokens_seen=trainer.tokens_seen,
                wall_seconds=wall,
                train_runtime_seconds=float(output.metrics.get("train_runtime", wall)),
                peak_rss_bytes=max(memory.peak_rss, st.rss_bytes()),
                num_processes=int(trainer.args.world_size),
                batch_kinds=dict(trainer.batch_kinds),
                log_history=trainer.state.log_history,
                batch_log=trainer.batch_log if config.record_batches else None,
            )
            record = rec.run_record(
                config, pairs, stats, info, st.runtime_info(),
                run_id=run_id,
                started=started,
                resumed_from=self.resume_from,
                batches_per_epoch=len(self.planner),
                previous=rec.previous_totals(out, self.resume_from, self.step_start),
            )
            rec.write_run_record(out, record, pairs)
            log.info(
                "trained %d steps, %d examples, %.1f examples/s; model in %s",
                stats.steps, stats.examples_seen, record["examples_per_second"] or 0.0, config.model_dir,
            )
        return TrainResult(model_dir=config.model_dir, run_record_path=out / rec.RUN_RECORD_FILE, record=record)


def _is_main_process() -> bool:
    """False on the other processes of a torchrun / accelerate launch (they share process 0's output)."""
    return os.environ.get("RANK", "0") in ("", "0")


def corpus_titles(corpus: str, languages: list[str] | None) -> list[str]:
    """Sorted article titles of a corpus (its rows are aligned, so one language holds them all)."""
    import pyarrow.compute as pc

    from polyqa import languages as L
    from polyqa.corpus import reader

    available = reader.corpus_languages(corpus)
    wanted = L.normalize_many(languages) if languages else available
    lang = L.ENGLISH if L.ENGLISH in wanted and L.ENGLISH in available else wanted[0]
    titles = pc.unique(reader.read_language(corpus, lang, columns=["title"]).column("title")).to_pylist()
    return sorted(t for t in titles if t)


def heldout_titles(config: TrainConfig) -> list[str]:
    """The titles training leaves out: those given, plus ``heldout_fraction`` of the corpus's articles.

    Given titles of which none is in the corpus are an error (a list for another corpus, say).
    """
    given = config.excluded_titles()
    if not given and config.heldout_fraction is None:
        return []
    titles = corpus_titles(config.corpus, config.languages)
    if given and not given & set(titles):
        raise ConfigError(f"none of the {len(given)} titles to exclude is an article of the corpus",
                          where=config.exclude_titles_file or "exclude_titles",
                          todo=f"titles must match the corpus' title column, e.g. {titles[:3]}")
    picked: list[str] = []
    if config.heldout_fraction is not None:
        picked = heldout_split(titles, config.heldout_fraction, config.heldout_seed)[1]
    return sorted(given | set(picked))


def train_retriever(config: TrainConfig, callbacks: list | None = None) -> TrainResult:
    """Train a retriever as ``config`` says; resumable; returns where the model and run record are."""
    return TrainJob(config, callbacks=callbacks).run()
