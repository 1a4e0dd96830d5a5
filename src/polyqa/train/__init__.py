"""Hybrid-batch retriever training on an aligned polyqa corpus.

``train_retriever(TrainConfig)`` (or ``TrainJob(config).run()``) reads
(question, positive) pairs from the corpus, batches them with
``polyqa.batching`` (x-x-mono, x-x, x-y or hybrid), trains any Hugging Face
encoder as a ``SentenceTransformer`` with InfoNCE over in-batch negatives
(``MultipleNegativesRankingLoss``, or its GradCache variant
``CachedMultipleNegativesRankingLoss`` for large batches in little memory),
and writes into ``output_dir``:

- ``model/``: the trained model (``SentenceTransformer(path)`` loads it) with
  its model card and ``polyqa_training.json``.
- ``checkpoints/checkpoint-N/``: trainer checkpoints every
  ``checkpoint_steps``; ``resume: true`` continues from the newest one with
  the same batch sequence.
- ``run_record.json`` and ``skipped_rows-<run_id>.arrow``.
- ``heldout_articles.txt`` when articles are left out for evaluation
  (``exclude_titles``, ``exclude_titles_file``, ``heldout_fraction``).

The output folder is locked while a run trains (one writer per output);
incomplete checkpoints are skipped on resume. Models load from safetensors
weights only, and remote code runs only with ``trust_remote_code: true``.

Modules: ``config`` (``TrainConfig``, the one loader of settings for the CLI,
the Prefect flow and the study), ``job`` (``TrainJob``, the driver),
``trainer`` (sentence-transformers wiring), ``record`` (what a run writes).

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
scale the counts by it). The same launch works on CPU-only machines (gloo).
bf16 (or fp16 where bf16 is not supported) is used only when CUDA is
available.

Importing this package does not import torch.
"""

from __future__ import annotations

from polyqa.train.config import LOSSES, PRECISIONS, TrainConfig
from polyqa.train.job import TrainJob, TrainResult, train_retriever
from polyqa.train.record import RUN_RECORD_FILE, TRAINING_INFO_FILE, corpus_manifest_sha256

__all__ = [
    "LOSSES",
    "PRECISIONS",
    "RUN_RECORD_FILE",
    "TRAINING_INFO_FILE",
    "TrainConfig",
    "TrainJob",
    "TrainResult",
    "corpus_manifest_sha256",
    "train_retriever",
]
