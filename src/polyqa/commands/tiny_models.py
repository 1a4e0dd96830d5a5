"""`polyqa tiny-models`: build the tiny random NLLB model used by tests and the demo."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tiny-models",
        help="Build a tiny random NLLB-style model (Hugging Face + CTranslate2 folders), offline.",
    )
    p.add_argument("--output", required=True, help="folder to build into (reused if already complete)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the weights (default 0)")
    p.add_argument(
        "--quantization",
        default="float32",
        help="CTranslate2 quantization of the converted copy (default float32)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polyqa.translate.tiny import build_tiny_model

    model = build_tiny_model(args.output, seed=args.seed, quantization=args.quantization)
    print(f"hf\t{model.hf_dir}")
    print(f"ct2\t{model.ct2_dir}")
    return 0
