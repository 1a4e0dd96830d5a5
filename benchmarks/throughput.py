"""Engine throughput per model shape: the source tokens per second behind ``build-corpus --plan``.

For each model (random weights with the exact shape of tiny, NLLB-200-distilled-600M,
NLLB-200-1.3B or NLLB-200-3.3B; int8, as the build converts them) and beam size, the
polyqa engine translates a fixed SQuAD-shaped mix of segments (questions, passage
sentences, answers in SQuAD's proportions) with the cache off, the output length forced
to the mix's mean source length (random weights babble; a real translation into a
European language is about as long as its source). A figure is source tokens / second,
the median of the rounds with its spread:

  <model>_<device>_beam<N>_tokens_per_second

Random weights cost what trained ones do: the work per token is fixed by the shape.
Models are built once into ~/.cache/polyqa/bench (or $POLYQA_BENCH_DIR); 3.3B needs
about 14 GB of memory and 7 GB of disk while it is built and converted.

    python benchmarks/throughput.py --models tiny,600m --beams 1,4
    python benchmarks/throughput.py --models 1.3b,3.3b --beams 4 --segments 48

The last line printed is the JSON of ``benchmarks/method.py``; copy the figures into
``src/polyqa/data/throughput.yaml`` with the command and machine they came from.
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from method import OthersClock, Run, log, timed, value_figure, wait_until_quiet  # noqa: E402
from squad_shaped import english_segments  # noqa: E402
from translate import SHAPES, bench_dir, build_random_nllb  # noqa: E402

def segment_mix(count: int, seed: int = 0) -> list[str]:
    """``count`` segments drawn from a SQuAD-shaped source, keeping its mix of segment kinds."""
    segments = english_segments(questions=max(2000, count * 3), passages=max(435, count * 3 * 435 // 2000),
                                seed=seed)
    return random.Random(seed).sample(segments, count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tiny,600m", help="comma separated: tiny, 600m, 1.3b, 3.3b")
    parser.add_argument("--beams", default="1,4", help="comma separated beam sizes")
    parser.add_argument("--segments", type=int, default=120, help="segments per round (tiny: 20 times as many)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settle", type=float, default=600,
                        help="before each model's rounds, wait up to SECONDS for the 1-minute load to fall below 1")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: int8_float16 on the GPU (replaces the estimated GPU figures)")
    args = parser.parse_args(argv)
    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    beams = [int(b) for b in args.beams.split(",")]
    wait_until_quiet(args.settle)
    run = Run("throughput", {"models": models, "beams": beams, "segments": args.segments, "rounds": args.rounds,
                             "device": args.device})

    from polyqa.translate.engine import DecodingSettings, TranslationEngine

    root = bench_dir()
    root.mkdir(parents=True, exist_ok=True)
    for name in models:
        # The tiny model is ~1000x faster: more segments, so a round lasts long enough to time.
        segments = segment_mix(args.segments * (20 if name == "tiny" else 1))
        if name == "tiny":
            from polyqa.translate.tiny import build_tiny_model

            model_dir: Path = build_tiny_model(root / "tiny-nllb").ct2_dir
        elif name in SHAPES:
            model_dir = build_random_nllb(root, name)
        else:
            parser.error(f"unknown model {name!r}; choose from tiny, {', '.join(SHAPES)}")
        t0 = time.perf_counter()
        engine = TranslationEngine(model_dir, quantization="int8", models_dir=root / "models", device=args.device)
        log(f"{name}: engine ready in {time.perf_counter() - t0:.0f} s ({engine.ct2_dir.name}, "
            f"{engine.inter_threads} x {engine.intra_threads} threads)")
        tokens = sum(engine.count_tokens(segments))
        forced = math.ceil(tokens / len(segments))
        run.extra.setdefault("mix", {})[name] = {"segments": len(segments), "source_tokens": tokens,
                                                 "forced_output_tokens": forced}
        # Building and converting a model loads the machine: measure only once it has settled.
        state = wait_until_quiet(args.settle)
        log(f"{name}: load {state['load1']} before its rounds")
        others = OthersClock()
        for beam in beams:
            engine.decoding = DecodingSettings(beam_size=beam, max_length_ratio=0.0, max_length_extra=forced,
                                               min_output_tokens=forced, max_output_tokens=None)
            engine.translate(segments[:8], "en", "de")  # warm-up, not counted
            per_round = []
            for r in range(args.rounds):
                spent, _ = timed(functools.partial(engine.translate, segments, "en", "de"))
                per_round.append(tokens / spent)
                log(f"{name} beam {beam} round {r + 1}/{args.rounds}: {spent:.2f} s, {tokens / spent:,.0f} tokens/s")
            run.add(value_figure(f"{name}_{args.device}_beam{beam}_tokens_per_second", per_round, unit="tokens/s",
                                 note=f"{len(segments)} segments, {tokens} source tokens, output forced to {forced}"))
        run.extra["mix"][name].update(load1_before=state["load1"], others_cpu_share=others.share())
        engine.close()
        del engine
        gc.collect()
    run.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
