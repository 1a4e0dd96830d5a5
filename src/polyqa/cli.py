"""The ``polyqa`` command line.

Each subcommand lives in its own module under ``polyqa.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed arguments and returning an exit code. Heavy imports happen
inside ``func`` so ``polyqa --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from polyqa import __version__, commands
from polyqa.errors import debug_enabled, user_message


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polyqa",
        description="Parallel multilingual QA corpora and multilingual retriever training.",
    )
    parser.add_argument("--version", action="version", version=f"polyqa {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also POLYQA_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # expected failures become one line; bugs keep their traceback
        message = user_message(exc)
        if message is None or debug_enabled(args.debug):
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
