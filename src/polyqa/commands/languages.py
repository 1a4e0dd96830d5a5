"""`polyqa languages`: list NLLB-200 codes or normalise some."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "languages", help="List NLLB-200 language codes, or normalise the codes given.",
        description="Without codes: every NLLB-200 code with its ISO 639-1 code and English name. With codes "
        "(de, deu, deu_Latn, zh-Hant, German, ...): each one and its NLLB code; unknown ones are reported on "
        "stderr with close matches, and the exit code is 2.",
    )
    p.add_argument("codes", nargs="*", help="codes to normalise (de, deu, deu_Latn, zh-Hant, ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polyqa import languages

    if not args.codes:
        for code in languages.NLLB_CODES:
            print(f"{code}\t{languages.iso639_1(code) or '-'}\t{languages.name(code)}")
        return 0
    import sys

    # Every code is answered: the known ones on stdout, one error line per unknown one on stderr.
    status = 0
    for code in args.codes:
        try:
            print(f"{code}\t{languages.normalize(code)}")
        except languages.UnknownLanguageError as exc:
            print(f"error: {exc}: polyqa languages lists every code", file=sys.stderr)
            status = 2
    return status
