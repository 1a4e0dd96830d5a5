"""`polyqa export CORPUS --format FORMAT --output DIR`: the corpus in a format other trainers read.

Formats: sentence-transformers (a Hugging Face dataset: anchor, positive, negative_1 ...; one config
per language pair), flagembedding (query/pos/neg JSONL), tevatron (train + corpus JSONL), beir
(corpus.jsonl, queries.jsonl, qrels/test.tsv per language, and cross-lingual folders).

  polyqa export out/default-corpus --format beir --output out/beir --heldout-fraction 0.25
  polyqa export out/default-corpus --format sentence-transformers --output out/st --mine-model minilm
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any

POSITIONAL = ("corpus",)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def number_or_none(kind: type) -> Any:
    """An option type for a number that may be turned off: ``none`` gives None."""
    def parse(text: str) -> Any:
        return None if text.strip().lower() == "none" else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def add_model_options(parser: argparse.ArgumentParser, model: Any, skip: tuple[str, ...] = ()) -> None:
    """One option per field of a pydantic settings model, with its description as help (defaults stay
    in the model: options left out are not in the namespace)."""
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        kind = field.annotation
        optional = typing.get_origin(kind) in (typing.Union, types.UnionType)
        if optional:  # X | None: the option takes an X (a number: or none)
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        help_text = field.description or ""
        if not field.is_required() and field.default not in (None, False, True):
            help_text += f" (default {field.default})"
        kwargs: dict[str, Any] = {"dest": name, "help": help_text, "default": argparse.SUPPRESS}
        if kind is bool:
            parser.add_argument(_option(name), action="store_true", **kwargs)
            if field.default is True:
                parser.add_argument(_option("no_" + name), action="store_false",
                                    dest=name, default=argparse.SUPPRESS, help=f"turn {name} off")
            continue
        if typing.get_origin(kind) is typing.Literal:
            kwargs["choices"] = typing.get_args(kind)
        elif kind in (int, float):
            kwargs["type"] = number_or_none(kind) if optional and field.default is not None else kind
            if optional and field.default is not None:
                kwargs["help"] += "; none turns it off"
        elif typing.get_origin(kind) is list:
            kwargs["type"] = lambda text: [x.strip() for x in text.split(",") if x.strip()]
            kwargs["help"] = "comma-separated " + kwargs["help"]
        parser.add_argument(_option(name), required=field.is_required(), **kwargs)


def register(subparsers: argparse._SubParsersAction) -> None:
    from polyqa.export.config import ExportConfig

    p = subparsers.add_parser("export", help="Export a corpus for sentence-transformers, FlagEmbedding, "
                              "Tevatron or BEIR, with hard negatives mined by id.", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", help=ExportConfig.model_fields["corpus"].description)
    add_model_options(p, ExportConfig, skip=POSITIONAL)
    p.add_argument("--split", default=argparse.SUPPRESS,
                   help="held-out articles: a titles file (as polyqa train writes it) or a fraction such as 0.25 "
                   "drawn with --seed; short for --heldout-titles-file / --heldout-fraction")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from polyqa.export import ExportConfig, ExportJob

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = {name: getattr(args, name) for name in ExportConfig.model_fields if hasattr(args, name)}
    if hasattr(args, "split"):
        try:
            settings["heldout_fraction"] = float(args.split)
        except ValueError:
            settings["heldout_titles_file"] = args.split
    config = ExportConfig.build(**settings)
    result = ExportJob(config, progress=print).run()
    counts = result.manifest["counts"]
    print(f"{'up to date' if result.up_to_date else 'wrote'} {result.output}: {sum(counts.values())} "
          f"over {len(counts)} pair(s); see {result.output / 'README.md'}")
    return 0
