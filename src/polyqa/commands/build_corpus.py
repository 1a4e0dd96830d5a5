"""`polyqa build-corpus`: English QA sources -> aligned multilingual Arrow shards, manifest, data card."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build-corpus",
        help="Build (or resume) a parallel multilingual QA corpus; with no --config, the embedded default.",
        description="Read the configured English QA sources, translate them with NLLB through CTranslate2 and "
        "write aligned Arrow shards per language, a manifest and a data card into --output. A rerun resumes "
        "(shards whose checksums verify are kept); one build at a time writes an output; polyqa deletes only "
        "files it wrote.",
    )
    p.add_argument("--config", help="YAML build config (default: the embedded sample, tiny model, 3 languages)")
    p.add_argument("--output",
                   help="corpus folder to create or resume, or an s3:// or gs:// URL (the store's settings come "
                   "from the environment, e.g. AWS_ENDPOINT_URL); required unless --plan")
    p.add_argument("--plan", action="store_true",
                   help="print what the build would translate (unique segments and source tokens per language, "
                   "what the cache holds) and how long it should take, then stop; nothing is written")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the corpus polyqa built in --output first (only its own files; others stay)")
    p.add_argument("--allow-non-empty", action="store_true",
                   help="build into a folder polyqa did not create, beside the files in it (never touched)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="if another build is writing --output, wait up to SECONDS for it (default: refuse at once)")
    p.add_argument("--refresh", action="store_true",
                   help="rebuild a corpus of another configuration in --output (cached translations are "
                   "reused, so only new text is translated); an unchanged complete corpus is left alone")
    p.add_argument("--languages", help="override the config's target languages (comma separated, any code form)")
    p.add_argument("--model", help="override the config's model (tiny, a hub name or a local folder)")
    p.add_argument("--shard-rows", type=int, help="override the rows per shard")
    p.add_argument("--cards-dir", help="also copy the data card to DIR/<corpus-name>.md (it always goes to OUTPUT/README.md)")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace) -> dict:
    """The config keys the command line replaces."""
    out: dict = {}
    if args.languages:
        out["languages"] = [x.strip() for x in args.languages.split(",") if x.strip()]
    if args.model:
        out["model"] = None if args.model.lower() in ("none", "null") else args.model
    if args.shard_rows is not None:  # 0 and negative values are refused by the config, not ignored
        out["shard_rows"] = args.shard_rows
    return out


def run(args: argparse.Namespace) -> int:
    import sys

    from polyqa.corpus.config import load_config
    from polyqa.corpus.job import build_corpus

    # Expected failures (config, sources, a locked or foreign output) become one line in polyqa.cli.
    config = load_config(args.config, overrides(args))
    if args.plan:
        from polyqa.corpus.plan import plan_build

        print(plan_build(config, progress=lambda msg: print(msg, file=sys.stderr)).render())
        return 0
    if not args.output:
        from polyqa.errors import ConfigError

        raise ConfigError("--output is required", todo="give the corpus folder to build, or --plan to only plan")
    manifest = build_corpus(config, args.output, overwrite=args.overwrite, refresh=args.refresh,
                            allow_non_empty=args.allow_non_empty, wait=args.wait,
                            cards_dir=args.cards_dir, progress=not args.no_progress,
                            log=lambda msg: print(msg, file=sys.stderr))
    print(f"{args.output}: {manifest.records} QA pairs x {len(manifest.languages)} languages = "
          f"{manifest.total_rows()} rows in {manifest.n_shards} shards; quarantined {manifest.quarantine_rows()}; "
          f"build {manifest.build_seconds} s")
    return 0
