"""`polyqa evaluate`: zero-shot retrieval evaluation on XQuAD-R, MLQA-R, any SQuAD-format parallel set,
a polyqa corpus, or MIRACL.

Works the same for any SentenceTransformer (a fine-tuned polyqa model folder, a
hub id, or an alias such as minilm for the bundled offline all-MiniLM-L6-v2
or xlm-r), so baselines and fine-tuned models sit side by side. Models load
from safetensors weights only. Writes OUT.json, OUT.md and (for the LAReQA
protocol) OUT.heatmap.png.

On articles held out of your own corpus (train with exclude_titles_file):
  polyqa evaluate --model RUN/model --benchmark polyqa-corpus --data-dir CORPUS \
      --articles-file heldout.txt --output OUT.json
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    from polyqa.evaluate.config import CANDIDATE_MODES, HELP, config_defaults

    defaults = config_defaults()

    def helps(name: str) -> str:
        default = defaults.get(name)
        return HELP[name] + (f" (default {default})" if default not in (None, "", True, False) else "")

    p = subparsers.add_parser(
        "evaluate",
        help="Zero-shot retrieval evaluation (XQuAD-R, MLQA-R, SQuAD-format sets, polyqa corpora: mAP, R@k, "
        "rank distance; MIRACL: nDCG@10, Recall@100).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # Options left out stay out of the namespace: EvaluationConfig alone holds the defaults.
        argument_default=argparse.SUPPRESS,
    )
    # Every dest is an EvaluationConfig field name (tests check that each field has an option).
    p.add_argument("--model", required=True, help=helps("model"))
    p.add_argument("--benchmark", required=True, help=helps("benchmark"))
    p.add_argument("--data-dir", help=helps("data_dir"))
    p.add_argument("--output", required=True, help=helps("output"))
    p.add_argument("--candidates", choices=CANDIDATE_MODES, help=helps("candidates"))
    p.add_argument("--languages", help="comma-separated " + helps("languages"))
    p.add_argument("--batch-size", type=int, help=helps("batch_size"))
    p.add_argument("--device", choices=["cpu", "cuda"], help=helps("device"))
    p.add_argument("--max-questions", type=int, help=helps("max_questions"))
    p.add_argument("--articles-file", help=helps("articles_file"))
    p.add_argument("--exclude-titles", dest="exclude_titles_file", help=helps("exclude_titles_file"))
    p.add_argument("--query-prompt", help=helps("query_prompt"))
    p.add_argument("--passage-prompt", help=helps("passage_prompt"))
    p.add_argument("--split", help=helps("split"))
    p.add_argument("--no-cache", dest="cache", action="store_false", help="do not save or reuse embeddings on disk")
    p.add_argument("--cache-dir", help=helps("cache_dir"))
    p.add_argument("--chunk-size", type=int, help=helps("chunk_size"))
    p.add_argument("--run-file", help=helps("run_file"))
    p.add_argument("--trust-remote-code", action="store_true", help=helps("trust_remote_code"))
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The EvaluationConfig settings given on the command line (what was left out keeps its default)."""
    from dataclasses import fields

    from polyqa.evaluate.config import EvaluationConfig

    settings = {f.name: getattr(args, f.name) for f in fields(EvaluationConfig) if hasattr(args, f.name)}
    if "languages" in settings:
        settings["languages"] = [x.strip() for x in settings["languages"].split(",") if x.strip()]
    return settings


def run(args: argparse.Namespace) -> int:
    import logging

    from polyqa.evaluate.config import EvaluationConfig
    from polyqa.evaluate.report import summary_line
    from polyqa.evaluate.run import run_evaluation

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Failures (bad paths, formats, languages, settings) reach polyqa.cli: one line on stderr, exit 2.
    config = EvaluationConfig.from_dict(settings_from_args(args), source="polyqa evaluate")
    result = run_evaluation(config)
    print(summary_line(result))
    print(f"wrote {config.output}")
    return 0
