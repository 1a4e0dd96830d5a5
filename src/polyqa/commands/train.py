"""`polyqa train --config FILE`: train a retriever with hybrid batches (see polyqa.train)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polyqa.train import TrainConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="Train a multilingual retriever on a polyqa corpus (x-x-mono, x-x, x-y or hybrid batches).",
        description=(
            "Train a SentenceTransformer with in-batch negatives on an aligned polyqa corpus. "
            "Settings come from a YAML file whose keys are polyqa.train.TrainConfig's fields "
            "(see configs/train-*.yaml); the options below override it. The output folder is locked "
            "while training (a second run on it is refused); resume skips unfinished checkpoints. "
            "Leave articles out for evaluation with exclude_titles_file or heldout_fraction "
            "(written to OUTPUT/heldout_articles.txt). Several GPUs: "
            "torchrun --nproc_per_node N -m polyqa.cli train --config FILE."
        ),
    )
    p.add_argument("--config", required=True, help="YAML training config")
    p.add_argument("--corpus", help="corpus folder (overrides the config)")
    p.add_argument("--output-dir", help="output folder (overrides the config)")
    p.add_argument("--max-steps", type=int, help="optimizer steps (overrides the config)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        help="resume from the newest checkpoint in the output folder, or from the checkpoint given",
    )
    p.set_defaults(func=run)


def load_config(args: argparse.Namespace) -> TrainConfig:
    """The run's settings: the YAML file, then the options given (unset options keep the file's values)."""
    from polyqa.train import TrainConfig

    return TrainConfig.load(
        args.config,
        corpus=args.corpus,
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        resume=args.resume,
    )


def run(args: argparse.Namespace) -> int:
    import json
    import logging

    from polyqa.train import TrainJob

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Failures (settings, corpus, a locked output, a full disk) reach polyqa.cli: one line, exit 2.
    job = TrainJob(load_config(args))
    result = job.run()
    summary = {
        "model_dir": str(result.model_dir),
        "run_record": str(result.run_record_path),
        "steps": result.record.get("steps"),
        "examples_per_second": result.record.get("examples_per_second"),
        "skipped_rows_total": result.record.get("skipped_rows_total"),
    }
    print(json.dumps(summary))
    return 0
