"""`polyqa translate`: translate lines of text (a demo and smoke-test tool)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "translate",
        help="Translate lines (one segment per line) with an NLLB model through CTranslate2.",
        description=(
            "Reads one segment per line from --input (default stdin) and prints, for each target, "
            "lines '<target>\\t<translation>' in input order. Use --passages to split each line into "
            "sentences first and join the translated sentences back."
        ),
    )
    p.add_argument("--model", required=True, help="CTranslate2 folder, Hugging Face folder or hub id")
    p.add_argument("--source", required=True, help="source language (en, eng, eng_Latn, ...)")
    p.add_argument("--target", required=True, help="comma-separated target languages (de,fr,zh-Hant)")
    p.add_argument("--input", default="-", help="text file, one segment per line; '-' for stdin")
    p.add_argument("--passages", action="store_true", help="segment each line into sentences first")
    p.add_argument("--quantization", default="int8", help="quantization when converting a HF model (int8)")
    p.add_argument("--revision", default=None, help="hub revision of the model")
    p.add_argument("--models-dir", default=None, help="converted models cache ($POLYQA_HOME/models)")
    p.add_argument(
        "--cache",
        default=None,
        help="translation cache (SQLite); default $POLYQA_HOME/translations.sqlite",
    )
    p.add_argument("--no-cache", action="store_true", help="do not use a persistent translation cache")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--device-index", default="0", help="comma-separated device ids (cuda: 0,1)")
    p.add_argument("--inter-threads", type=int, default=None)
    p.add_argument("--intra-threads", type=int, default=None)
    p.add_argument("--beam-size", type=int, default=4)
    p.add_argument("--max-batch-tokens", type=int, default=2048)
    p.add_argument("--no-repeat-ngram-size", type=int, default=0)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--stats", action="store_true", help="print engine statistics as JSON on stderr")
    p.set_defaults(func=run)


def _default_cache_path():
    from polyqa import paths

    return paths.translation_cache()


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from polyqa.languages import UnknownLanguageError
    from polyqa.translate.convert import ModelNotFoundError
    from polyqa.translate.engine import DecodingSettings, TranslationEngine

    if args.input == "-":
        lines = sys.stdin.read().splitlines()
    else:
        with open(args.input, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    decoding = DecodingSettings(
        beam_size=args.beam_size,
        max_batch_tokens=args.max_batch_tokens,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        repetition_penalty=args.repetition_penalty,
    )
    try:
        engine = TranslationEngine(
            args.model,
            quantization=args.quantization,
            device=args.device,
            device_index=[int(i) for i in args.device_index.split(",")],
            inter_threads=args.inter_threads,
            intra_threads=args.intra_threads,
            revision=args.revision,
            models_dir=args.models_dir,
            cache=None if args.no_cache else (args.cache or _default_cache_path()),
            decoding=decoding,
        )
    except (ModelNotFoundError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = len(lines) > 50
    with engine:
        try:
            if args.passages:
                result = engine.translate_passages(lines, args.source, targets, progress=progress)
                outputs = {t: [p.text for p in passages] for t, passages in result.items()}
            else:
                outputs = engine.translate_many(lines, args.source, targets, progress=progress)
        except (UnknownLanguageError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for target, translations in outputs.items():
            for translation in translations:
                print(f"{target}\t{translation}")
        if args.stats:
            print(json.dumps({"model": engine.model_info, "stats": engine.stats.as_dict()}), file=sys.stderr)
    return 0
