"""`polyqa languages`: list NLLB-200 codes or normalise some."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "languages", help="List NLLB-200 language codes, or normalise the codes given."
    )
    p.add_argument("codes", nargs="*", help="codes to normalise (de, deu, deu_Latn, zh-Hant, ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polyqa import languages

    if not args.codes:
        for code in languages.NLLB_CODES:
            print(f"{code}\t{languages.iso639_1(code) or '-'}\t{languages.name(code)}")
        return 0
    status = 0
    for code in args.codes:
        try:
            print(f"{code}\t{languages.normalize(code)}")
        except languages.UnknownLanguageError as exc:
            print(f"error: {exc}")
            status = 1
    return status
