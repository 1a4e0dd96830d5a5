"""`polyqa validate CORPUS_DIR`: schema, checksums, alignment and counts; exit 0 only if all hold."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("validate", help="Check a corpus against its manifest and the corpus contract.")
    p.add_argument("corpus_dir", help="corpus folder (with manifest.json)")
    p.add_argument("--write-card", action="store_true", help="also regenerate the corpus' data card")
    p.add_argument("--cards-dir", default="data_cards", help="where --write-card puts <corpus-name>.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polyqa.corpus.validate import validate_corpus

    report = validate_corpus(args.corpus_dir)
    print(report.text())
    if report.ok and args.write_card:
        from polyqa.cards import write_cards
        from polyqa.corpus.manifest import Manifest

        for path in write_cards(args.corpus_dir, Manifest.load(args.corpus_dir), args.cards_dir):
            print(f"wrote {path}")
    return 0 if report.ok else 1
