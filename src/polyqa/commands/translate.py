"""`polyqa translate`: translate lines of text (a demo and smoke-test tool)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from polyqa.translate.convert import QUANTIZATIONS

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
    p.add_argument("--quantization", default="int8", choices=QUANTIZATIONS,
                   help="quantization when converting a HF model (default int8)")
    p.add_argument("--revision", default=None, help="hub revision of the model")
    p.add_argument("--models-dir", default=None, help="converted models cache ($POLYQA_HOME/models)")
    p.add_argument(
        "--cache",
        default=None,
        help="translation cache (SQLite); default $POLYQA_HOME/translations.sqlite",
    )
    p.add_argument("--no-cache", action="store_true", help="do not use a persistent translation cache")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where CTranslate2 runs (default cpu)")
    p.add_argument("--device-index", default="0", help="comma-separated device ids (cuda: 0,1)")
    p.add_argument("--inter-threads", type=int, default=None,
                   help="CTranslate2 workers translating batches in parallel (default: one per core on CPU)")
    p.add_argument("--intra-threads", type=int, default=None,
                   help="threads each worker uses for one batch (default 1 on CPU)")
    p.add_argument("--beam-size", type=int, default=4, help="beam search width; 1 is greedy (default 4)")
    p.add_argument("--max-batch-tokens", type=int, default=2048,
                   help="source tokens per batch; segments are length-sorted into such batches (default 2048)")
    p.add_argument("--no-repeat-ngram-size", type=int, default=0,
                   help="forbid repeating n-grams of this size in a translation; 0 allows them (default 0)")
    p.add_argument("--repetition-penalty", type=float, default=1.0,
                   help="penalty > 1 for tokens already generated; 1 means none (default 1.0)")
    p.add_argument("--stats", action="store_true", help="print engine statistics as JSON on stderr")
    p.set_defaults(func=run)


def _default_cache_path():
    from polyqa import paths

    return paths.translation_cache()


def _read_lines(source: str) -> list[str]:
    """Lines of ``--input`` (or stdin); a file that is not UTF-8 is named in the error."""
    import sys
    from pathlib import Path

    from polyqa.errors import PolyqaError

    if source == "-":
        return sys.stdin.read().splitlines()
    try:
        return Path(source).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise PolyqaError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=source,
                          todo="save the input as UTF-8") from None


def check_options(args: argparse.Namespace) -> tuple[str, list[str], list[int]]:
    """Source, targets (NLLB codes) and device ids, checked before any model loads; ConfigError naming the option."""
    from polyqa.errors import ConfigError, check_int, check_number
    from polyqa.languages import UnknownLanguageError, normalize

    try:
        source = normalize(args.source)
    except UnknownLanguageError as exc:
        raise ConfigError(f"--source: {exc}", todo="polyqa languages lists the codes") from None
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    if not targets:
        raise ConfigError("--target: no target language given")
    try:
        targets = [normalize(t) for t in targets]
    except UnknownLanguageError as exc:
        raise ConfigError(f"--target: {exc}", todo="polyqa languages lists the codes") from None
    for option, value, minimum in (("--beam-size", args.beam_size, 1), ("--max-batch-tokens", args.max_batch_tokens, 1),
                                   ("--no-repeat-ngram-size", args.no_repeat_ngram_size, 0)):
        check_int(option, value, minimum=minimum)
    for option, value in (("--inter-threads", args.inter_threads), ("--intra-threads", args.intra_threads)):
        check_int(option, value, minimum=1, optional=True)
    check_number("--repetition-penalty", args.repetition_penalty, above=0.0)
    try:
        device_index = [int(i) for i in args.device_index.split(",")]
    except ValueError:
        raise ConfigError(f"--device-index must be comma-separated device numbers, got {args.device_index!r}") \
            from None
    if any(i < 0 for i in device_index):
        raise ConfigError(f"--device-index must be >= 0, got {args.device_index!r}")
    return source, targets, device_index


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from polyqa.translate.engine import DecodingSettings, TranslationEngine

    # Failures (options, paths, the model, a full disk) reach polyqa.cli: one line on stderr, exit 2.
    source, targets, device_index = check_options(args)
    lines = _read_lines(args.input)
    decoding = DecodingSettings(
        beam_size=args.beam_size,
        max_batch_tokens=args.max_batch_tokens,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        repetition_penalty=args.repetition_penalty,
    )
    engine = TranslationEngine(
        args.model,
        quantization=args.quantization,
        device=args.device,
        device_index=device_index,
        inter_threads=args.inter_threads,
        intra_threads=args.intra_threads,
        revision=args.revision,
        models_dir=args.models_dir,
        cache=None if args.no_cache else (args.cache or _default_cache_path()),
        decoding=decoding,
    )
    progress = len(lines) > 50
    with engine:
        if args.passages:
            result = engine.translate_passages(lines, source, targets, progress=progress)
            outputs = {t: [p.text for p in passages] for t, passages in result.items()}
        else:
            outputs = engine.translate_many(lines, source, targets, progress=progress)
        for target, translations in outputs.items():
            for translation in translations:
                print(f"{target}\t{translation}")
        if args.stats:
            print(json.dumps({"model": engine.model_info, "stats": engine.stats.as_dict()}), file=sys.stderr)
    return 0
