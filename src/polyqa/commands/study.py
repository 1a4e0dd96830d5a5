"""`polyqa study`: the language-scaling study (train and evaluate a grid of cells)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "study",
        help="Language-scaling study: zero-shot retrieval against the number of training languages.",
        description="Train and evaluate a grid of cells (number of training languages x batch strategy x "
        "hybrid alpha x languages-per-batch cap x seed, plus extra_cells), each with the same step budget, and "
        "write the table, plots and REPORT.md to the results folder. Trained models and finished cells are kept "
        "and reused on a rerun; the results folder is locked while a study runs.",
    )
    p.add_argument("--config", required=True, help="study YAML (see configs/cpu-scaling.yaml)")
    p.add_argument("--results-dir", default=None, help="override the config's results_dir")
    p.add_argument("--work-dir", default=None, help="override the config's work_dir")
    p.add_argument("--only", default=None,
                   help="comma-separated cell labels to run now (finished cells are always reused)")
    p.add_argument("--plan", action="store_true",
                   help="print every cell with its estimated cost (cost_estimate) and exit; reads no data")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from polyqa.study import StudyConfig, StudyJob, plan_lines

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Failures (settings, paths, a locked results folder) reach polyqa.cli: one line, exit 2.
    config = StudyConfig.from_yaml(args.config, results_dir=args.results_dir, work_dir=args.work_dir)
    if args.plan:
        print("\n".join(plan_lines(config)))
        return 0
    only = [c for c in args.only.split(",") if c] if args.only else None
    rows = StudyJob(config, only).run(progress=print)
    print(f"{len(rows)} cells; results in {config.results_dir}")
    return 0
