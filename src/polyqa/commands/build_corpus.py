"""`polyqa build-corpus`: English QA sources -> aligned multilingual Arrow shards, manifest, data card."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build-corpus",
        help="Build (or resume) a parallel multilingual QA corpus; with no --config, the embedded default.",
    )
    p.add_argument("--config", help="YAML build config (default: the embedded sample, tiny model, 3 languages)")
    p.add_argument("--output", required=True, help="corpus folder to create or resume")
    p.add_argument("--overwrite", action="store_true", help="delete a previous polyqa corpus in --output first")
    p.add_argument("--languages", help="override the config's target languages (comma separated, any code form)")
    p.add_argument("--model", help="override the config's model (tiny, a hub name or a local folder)")
    p.add_argument("--shard-rows", type=int, help="override the rows per shard")
    p.add_argument("--cards-dir", help="where to write <corpus-name>.md (default: the config's card_dir)")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from polyqa.corpus.build import CorpusConflictError, build_corpus, load_config
    from polyqa.sources.base import SourceError

    try:
        config = load_config(args.config)
        if args.languages:
            config.languages = [x.strip() for x in args.languages.split(",") if x.strip()]
        if args.model:
            config.model = None if args.model.lower() in ("none", "null") else args.model
        if args.shard_rows:
            config.shard_rows = args.shard_rows
        config = load_config(config.as_dict())  # re-validate the overrides
        manifest = build_corpus(config, args.output, overwrite=args.overwrite, cards_dir=args.cards_dir,
                                progress=not args.no_progress, log=lambda msg: print(msg, file=sys.stderr))
    except (SourceError, CorpusConflictError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = sum(e["rows"] for e in manifest.shards)
    print(f"{args.output}: {manifest['records']} QA pairs x {len(manifest['languages'])} languages = {rows} rows "
          f"in {manifest['n_shards']} shards; quarantined {manifest['quarantine']['rows']}; "
          f"build {manifest['build_seconds']} s")
    return 0
