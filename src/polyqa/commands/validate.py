"""`polyqa validate CORPUS_DIR`: schema, checksums, alignment and counts; exit 0 only if all hold."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate", help="Check a corpus against its manifest and the corpus contract.",
        description="Check a corpus folder: every shard listed in the manifest with its checksum and row count, "
        "no stray or damaged files (each named, with the rows a damaged shard still holds), the schema, "
        "alignment across languages and the counts. Exit 0 when all hold, 1 when some do not, 2 when there "
        "is no corpus to check.")
    p.add_argument("corpus_dir", help="corpus folder (with manifest.json), or a URL such as s3://bucket/corpus")
    p.add_argument("--write-card", action="store_true", help="also regenerate the corpus' data card")
    p.add_argument("--cards-dir", default=None, help="with --write-card, also copy the card to DIR/<corpus-name>.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0: the corpus holds; 1: it has problems (listed); 2: there is no corpus to check."""
    from polyqa.corpus.reader import require_corpus
    from polyqa.corpus.validate import validate_corpus

    folder = require_corpus(args.corpus_dir, manifest=True,
                            todo="pass a corpus folder (the --output of build-corpus or import-parallel)")
    report = validate_corpus(folder)
    print(report.text())
    if report.ok and args.write_card:
        from polyqa.corpus.cards import write_cards
        from polyqa.corpus.output import remember_card
        from polyqa.corpus.manifest import Manifest

        for path in write_cards(folder, Manifest.load(folder), args.cards_dir):
            print(f"wrote {path}")
        remember_card(folder)  # so a later build knows README.md is polyqa's card, not the user's
    return 0 if report.ok else 1
