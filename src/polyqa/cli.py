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


class ArgumentParser(argparse.ArgumentParser):
    """Usage errors (a missing option, an invalid choice) in the same one-line form as other failures.

    Subcommand parsers are made by ``add_subparsers`` with this class too.
    """

    def error(self, message: str):
        self.exit(2, f"error: {message}: {self.prog}: see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed as one line
        return exc.code if isinstance(exc.code, int) else 2
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
