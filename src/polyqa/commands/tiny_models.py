"""`polyqa tiny-models`: build the tiny random NLLB model used by tests and the demo."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from polyqa.translate.convert import QUANTIZATIONS

    p = subparsers.add_parser(
        "tiny-models",
        help="Build a tiny random NLLB-style model (Hugging Face + CTranslate2 folders), offline.",
        description="Build the tiny random NLLB-architecture model used by the tests and the demo: a Hugging "
        "Face folder (OUTPUT/hf) and its CTranslate2 conversion (OUTPUT/ct2). Its weights are random, so it "
        "translates into babble; it exists to run the pipeline offline. A complete build is reused; a folder "
        "holding anything else is never replaced.",
    )
    p.add_argument("--output", required=True, help="folder to build into (reused if already complete)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the weights (default 0)")
    p.add_argument(
        "--quantization",
        default="float32",
        choices=QUANTIZATIONS,
        help="CTranslate2 quantization of the converted copy (default float32)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from polyqa.errors import PolyqaError
    from polyqa.translate.tiny import build_tiny_model

    output = Path(args.output).expanduser()
    if output.exists() and not output.is_dir():
        raise PolyqaError("a file where the model folder is expected", where=str(output),
                          todo="choose a folder for --output")
    model = build_tiny_model(output, seed=args.seed, quantization=args.quantization)
    print(f"hf\t{model.hf_dir}")
    print(f"ct2\t{model.ct2_dir}")
    return 0
