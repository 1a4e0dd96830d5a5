"""`polyqa import-parallel`: an existing parallel QA set (one SQuAD/LAReQA JSON per language) as a corpus."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-parallel",
        help="Import a folder of <lang>.json SQuAD/LAReQA files (e.g. XQuAD-R) into the corpus format, "
        "without translation.",
        description="Turn an existing parallel QA set, one SQuAD or LAReQA JSON file per language with the same "
        "question ids, into a corpus in the polyqa format (shards, manifest, data card) without machine "
        "translation. Questions missing from a language go to the quarantine.",
    )
    p.add_argument("folder", help="folder with en.json and one <lang>.json per other language")
    p.add_argument("--output", required=True, help="corpus folder to create or resume")
    p.add_argument("--languages", help="comma-separated languages to import (default: every file in the folder)")
    p.add_argument("--name", help="corpus and source name (default: the folder name)")
    p.add_argument("--license", help="license of the imported set (e.g. CC-BY-SA-4.0)")
    p.add_argument("--shard-rows", type=int, default=1000, help="rows per shard and language (default: 1000)")
    p.add_argument("--format", choices=("arrow", "parquet"), default="arrow",
                   help="shard file format (default: arrow)")
    p.add_argument("--keep-duplicate-questions", action="store_true",
                   help="keep repeated questions on the same passage under distinct ids (evaluation sets)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the corpus polyqa built in --output first (only its own files; others stay)")
    p.add_argument("--allow-non-empty", action="store_true",
                   help="import into a folder polyqa did not create, beside the files in it (never touched)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="if another build is writing --output, wait up to SECONDS for it (default: refuse at once)")
    p.add_argument("--cards-dir", help="also copy the data card to DIR/<name>.md (it always goes to OUTPUT/README.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from polyqa import languages as L
    from polyqa.languages import ENGLISH
    from polyqa.corpus.job import build_corpus
    from polyqa.corpus.output import CorpusConflictError
    from polyqa.sources.base import SourceError
    from polyqa.sources.parallel_import import language_files

    folder = Path(args.folder)
    name = args.name or folder.name
    try:
        wanted = [x.strip() for x in args.languages.split(",")] if args.languages else None
        files = language_files(folder, wanted)
        targets = [code for code in files if code != ENGLISH]
        source = {"kind": "parallel", "path": str(folder), "name": name, "license": args.license}
        if wanted:
            source["languages"] = [p.stem for p in files.values()]
        config = {"name": name, "sources": [source], "languages": targets, "model": None,
                  "shard_rows": args.shard_rows, "format": args.format,
                  "dedup_questions": not args.keep_duplicate_questions,
                  "card_dir": args.cards_dir}
        manifest = build_corpus(config, args.output, overwrite=args.overwrite,
                                allow_non_empty=args.allow_non_empty, wait=args.wait,
                                log=lambda msg: print(msg, file=sys.stderr))
    except (SourceError, CorpusConflictError, ValueError, L.UnknownLanguageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {manifest.records} QA pairs x {len(manifest.languages)} languages; "
          f"quarantined {manifest.quarantine_rows()}")
    return 0
