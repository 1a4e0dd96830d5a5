"""`polyqa mine-negatives CORPUS --model M`: hard negatives per language, stored by passage/sentence id.

Each language's candidates (passages, or sentences with --positive sentence) are encoded once and
searched with faiss; a negative is never the positive, a translation of it, or a text containing
the answer. The result (lang=<code>.arrow files and negatives.json) is reused by a rerun with the
same settings and given to polyqa export --negatives DIR or polyqa train (hard_negatives: mined).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from polyqa.commands.export import number_or_none
    from polyqa.export.config import ExportConfig

    f = ExportConfig.model_fields
    p = subparsers.add_parser("mine-negatives", help="Mine hard negatives per language with a "
                              "sentence-transformers encoder (faiss search), stored by id.",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", help=f["corpus"].description)
    p.add_argument("--model", required=True, help="encoder: an alias (minilm works offline), hub id or folder")
    p.add_argument("--output", default=None,
                   help="folder for the negatives (default: <corpus>-negatives-<model> beside the corpus)")
    p.add_argument("--languages", default=None, help="comma-separated " + f["languages"].description)
    p.add_argument("--positive", choices=["passage", "sentence"], default="passage", help=f["positive"].description)
    for name in ("num_negatives", "range_min", "range_max", "relative_margin", "max_score", "seed", "batch_size"):
        default = f[name].default
        kind = type(default) if default is not None else float
        off = name in ("relative_margin", "max_score")  # filters a user may turn off
        p.add_argument("--" + name.replace("_", "-"), type=number_or_none(kind) if off else kind, default=default,
                       help=f"{f[name].description} (default {default}{'; none turns it off' if off else ''})")
    p.add_argument("--sampling", choices=["top", "random"], default="top", help=f["sampling"].description)
    p.add_argument("--query-prompt", default="", help="prefix of each question when encoding")
    p.add_argument("--passage-prompt", default="", help="prefix of each candidate when encoding")
    p.add_argument("--device", default=None, help=f["device"].description)
    p.set_defaults(func=run)


def default_output(corpus: str, model: str) -> Path:
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in Path(model).name or model)
    folder = Path(corpus).expanduser()
    return folder.parent / f"{folder.name}-negatives-{slug}"


def run(args: argparse.Namespace) -> int:
    import logging

    from polyqa.export.config import ExportConfig
    from polyqa.export.mining import MinerSettings, mine_negatives

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the same bounds as export's mining settings
    ExportConfig.build(source="polyqa mine-negatives", corpus=args.corpus, output=".", format="beir",
                       num_negatives=args.num_negatives, range_min=args.range_min, range_max=args.range_max,
                       relative_margin=args.relative_margin, batch_size=args.batch_size)
    settings = MinerSettings(model=args.model, positive=args.positive, num_negatives=args.num_negatives,
                             range_min=args.range_min, range_max=args.range_max,
                             relative_margin=args.relative_margin, max_score=args.max_score,
                             sampling=args.sampling, seed=args.seed, query_prompt=args.query_prompt,
                             passage_prompt=args.passage_prompt)
    languages = [x.strip() for x in args.languages.split(",")] if args.languages else None
    output = Path(args.output) if args.output else default_output(args.corpus, args.model)
    mined = mine_negatives(args.corpus, output, settings, languages=languages, batch_size=args.batch_size,
                           device=args.device, progress=print)
    print(f"negatives in {mined.folder} ({', '.join(mined.languages)}); "
          f"{mined.description.get('passages_encoded_per_second')} {args.positive}s encoded per second")
    return 0
