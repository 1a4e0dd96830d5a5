"""Translation throughput, side by side, on a random model with NLLB-200-distilled-600M's exact shape.

Figures (each a median over >= 5 ABBA rounds of per-round ratios; > 1: the second side is faster):
  ct2_vs_hf_beam1, ct2_vs_hf_beam4   transformers ``generate`` (float32) seconds / polyqa engine
                                     (CTranslate2 int8, its default batching and threads) seconds,
                                     same sentences; target >= 5.
  engine_vs_raw_beam1, _beam4        raw ``Translator.translate_batch`` (pre-tokenised, the same
                                     translator: 2 single-threaded workers on 2 cores, 32 sentences
                                     per batch) seconds / engine seconds: what the engine's
                                     batching costs or gains; target >= 0.95.
  pipeline_vs_raw                    raw seconds / ``translate_passages`` end to end (segmentation,
                                     tokenisation, batching, cold-cache lookups and writes,
                                     detokenisation), beam 1 (the pipeline's own work weighs most
                                     there); target >= 0.9.
  output_layer_share_beam1           1 - (raw seconds with the output vocabulary cut to 4,096
                                     entries) / (raw seconds with all 256,206): about the share
                                     of the time spent in the output layer (see below); no target.

The transformers side is run as a careful user would: torch threads = cores,
length-sorted batches, ``torch.inference_mode``, float32 (the CPU default), SDPA
attention (transformers' default), tokenising inside the timed span as the engine
does, and its fastest batch size on 2 cores: 64 sentences at beam 1, 32 at beam 4
(``--hf-batch-sizes``; on the quick set, beam 1 took 16.0 s at 16, 11.9 s at 32,
10.4 s at 64; beam 4 took 36.1 s at 16, 32.3 s at 32, 38.9 s at 64). The raw
CTranslate2 side gets 32 sentences per batch (``--raw-batch-size``), its best at
beam 1; CTranslate2 sorts by length itself.

What bounds ct2_vs_hf on a CPU: the output layer. NLLB's output projection (1024 x
256,206, tied to the embeddings) is the largest matrix product of a decoding step, and
CTranslate2 never pre-packs it (``TransformerModel::is_packable`` leaves out the
projection, so that vocabulary maps can slice it), so oneMKL packs its 262 MB of int8
weights again on every step of every batch; every other linear layer is packed once at
load. ``output_layer_share_beam1`` measures what that costs: the raw side against the
same model with its output vocabulary cut to the first 4,096 entries (a CTranslate2
vocabulary map), same batches, same output lengths; about 0.4 on the quick set. With
``MKL_VERBOSE=1``, at equal rows per batch (9, 18, 22), the projection's unpacked int8
products ran at 36, 74 and 93 GMAC/s and the packed layers' at 82, 135 and 181: about
half. CTranslate2 has no switch to pack it; ``packed_projection.sh`` builds CTranslate2
from source with the projection packed too (one line) and runs this benchmark on that
build (``--unchanged``: the same source as is). On quiet runs the packed build's engine
took 2.2-2.5 s per round at beam 1, against 2.8-3.4 s for the unchanged build and the
wheel, and 7.1-7.8 s at beam 4 against 7.1-7.6 s: 1.25x faster at beam 1, no faster at
beam 4. ct2_vs_hf read 4.5-4.9x at beam 1 and 4.4-4.5x at beam 4 on the packed build
(3 runs), 3.4-3.8x and 4.0-4.5x on the unchanged build and the wheel the same morning (2
runs): the transformers side moves by up to 20% from run to run, the engine does not. At
beam 4 no single cost dominates: ``perf``, attached to raw CTranslate2 (the wheel) while it
translates the quick set at beam 4, finds 32% in int8 products, 11% repacking the
projection, 7% dequantising products, 7% log-softmax and 8% top-k over 4 x 256,206 scores
per sentence, 8% copying (memmove) and about 9% in the kernel faulting in fresh pages. The int8
kernels already use the CPU's best instructions: oneMKL 2025.3 finds AMX here
(``MKL_VERBOSE=1``) and uses it, since ``MKL_ENABLE_INSTRUCTIONS=AVX512_E1`` (VNNI, no
AMX) makes raw CTranslate2 about 35% slower. What else does not move the engine,
measured on the quick set at beam 1 (engine seconds, medians of 3):
``CT2_PACKED_GEMM`` (on by default in CTranslate2 4.8; it leaves the projection out),
``CT2_FORCE_CPU_ISA=AVX512`` (2-4%), oneDNN instead of MKL
(``CT2_USE_MKL=0``: 15% slower), int16 (2.3x slower), 2 threads per worker (within
noise), 44 forced tokens instead of 16 (4.05x vs 3.85x). Larger token budgets (4,096 or
8,192 padded tokens per batch instead of 2,048, on the full set of 124 sentences: 10-20%
slower at beam 1, within noise at beam 4): more rows per batch do not help either.
Against transformers at batch 16 (slower than its best by 1.5x at beam 1), the same
engine would read over 5x: the batch size, not the engine, made earlier figures higher.

Random weights babble, so every engine is forced to produce exactly N new
tokens (transformers counts the forced language token among new tokens,
CTranslate2 counts the target prefix in the decoding length); every round
checks that all sides produced exactly N tokens per sentence.

The model (random weights, 615M parameters, 256,206-token vocabulary) is built
once into ~/.cache/polyqa/bench (or $POLYQA_BENCH_DIR) and converted to int8 by
the engine's own conversion cache.

    python benchmarks/translate.py --quick      # < 10 min on 2 cores (model build excluded)
    python benchmarks/translate.py              # more sentences, more rounds

The last line printed is the JSON of ``benchmarks/method.py``.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from method import Run, alternate, log, side_by_side, value_figure  # noqa: E402


def bench_dir() -> Path:
    return Path(os.environ.get("POLYQA_BENCH_DIR", Path.home() / ".cache" / "polyqa" / "bench"))


# NLLB-200 checkpoints' layer sizes (their config.json files); vocabulary 256,206 for all.
SHAPES = {
    "600m": dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                 decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096),
    "1.3b": dict(d_model=1024, encoder_layers=24, decoder_layers=24, encoder_attention_heads=16,
                 decoder_attention_heads=16, encoder_ffn_dim=8192, decoder_ffn_dim=8192),
    "3.3b": dict(d_model=2048, encoder_layers=24, decoder_layers=24, encoder_attention_heads=16,
                 decoder_attention_heads=16, encoder_ffn_dim=8192, decoder_ffn_dim=8192),
}


def build_random_nllb(root: Path, name: str = "600m") -> Path:
    """A random-weight NLLB of shape ``name`` with a 256,206-token NLLB tokenizer (built once)."""
    hf_dir = root / f"nllb-{name}-random"
    if (hf_dir / "model.safetensors").is_file() or (hf_dir / "model.safetensors.index.json").is_file():
        return hf_dir
    import torch

    from polyqa.translate.sample_text import sample_lines
    from polyqa.translate.tiny import NLLB_VOCAB_SIZE, build_hf_model, build_tokenizer, train_sentencepiece

    log(f"building the random NLLB-{name}-shaped model (once)")
    tokenizer = build_tokenizer(train_sentencepiece(sample_lines(), 600, 0), vocab_size=NLLB_VOCAB_SIZE)
    # 3.3B in float16 halves the memory of the build; the int8 weights and the CPU compute
    # type (int8_float32) come out the same.
    torch.set_default_dtype(torch.float16 if name == "3.3b" else torch.float32)
    try:
        model = build_hf_model(NLLB_VOCAB_SIZE, 0, init_std=0.02,
                               architecture={**SHAPES[name], "max_position_embeddings": 1024})
    finally:
        torch.set_default_dtype(torch.float32)
    tmp = Path(tempfile.mkdtemp(prefix=f".nllb-{name}-random.", dir=root))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    del model
    gc.collect()
    if hf_dir.exists():
        shutil.rmtree(hf_dir)
    os.rename(tmp, hf_dir)
    return hf_dir


def small_vocabulary_copy(ct2_dir: Path, into: Path, size: int) -> tuple[Path, int]:
    """The converted model (its files linked, not copied) with a vocabulary map that allows only its first
    ``size`` target tokens: with ``use_vmap=True``, CTranslate2 computes the output layer for those alone."""
    import json

    for item in ct2_dir.iterdir():
        (into / item.name).symlink_to(item)
    vocabulary = json.loads((ct2_dir / "shared_vocabulary.json").read_text(encoding="utf-8"))
    # One rule with an empty source: tokens that are always candidates.
    (into / "vmap.txt").write_text("\t" + " ".join(vocabulary[:size]) + "\n", encoding="utf-8")
    return into, len(vocabulary)


def make_passages(count: int, seed: int) -> list[str]:
    """Unique English passages of 2-4 sentences built from the shipped sample text."""
    from polyqa.translate.sample_text import ENGLISH

    sentences = [line for line in ENGLISH.splitlines() if line.strip()]
    rng = random.Random(seed)
    passages = []
    for i in range(count):
        chosen = rng.sample(sentences, rng.randint(2, 4))
        # a number makes every sentence unique, so no engine gets dedup for free
        passages.append(" ".join(f"Item {i}-{k}: {s}" for k, s in enumerate(chosen)))
    return passages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sentences, 5 rounds (< 10 min on 2 cores)")
    parser.add_argument("--new-tokens", type=int, default=None, help="forced output tokens per sentence (16)")
    parser.add_argument("--passages", type=int, default=None, help="passages of 2-4 sentences (quick 16, full 40)")
    parser.add_argument("--rounds", type=int, default=None, help="ABBA rounds per figure (quick 5, full 7)")
    parser.add_argument("--hf-batch-sizes", default="64,32",
                        help="transformers batch size at beam 1 and at beam 4 (its fastest on 2 cores)")
    parser.add_argument("--raw-batch-size", type=int, default=32,
                        help="raw CTranslate2 side: max_batch_size in examples")
    parser.add_argument("--small-vocab", type=int, default=4096,
                        help="output vocabulary of the output-layer measurement (first N entries)")
    parser.add_argument("--skip-hf", action="store_true", help="skip the transformers figures")
    parser.add_argument("--skip-output-layer", action="store_true",
                        help="skip output_layer_share_beam1 (a CTranslate2 build that packs the output "
                             "layer cannot use vocabulary maps; see packed_projection.sh)")
    parser.add_argument("--compare-threads", action="store_true",
                        help="also time the engine's threads (cores x 1) against CTranslate2's usual 1 x cores")
    args = parser.parse_args(argv)
    new_tokens = args.new_tokens or 16
    n_passages = args.passages or (16 if args.quick else 40)
    rounds = args.rounds or (5 if args.quick else 7)
    hf_batch = dict(zip((1, 4), (int(x) for x in args.hf_batch_sizes.split(","))))
    run = Run("translate", {"quick": args.quick, "new_tokens": new_tokens, "passages": n_passages, "rounds": rounds,
                            "hf_batch_sizes": hf_batch, "raw_batch_size": args.raw_batch_size})

    import ctranslate2
    import torch
    import transformers
    from transformers import AutoTokenizer, M2M100ForConditionalGeneration

    transformers.logging.set_verbosity_error()  # generate() warns on every call that max_new_tokens wins

    from polyqa.segment import split_sentences
    from polyqa.translate.cache import TranslationCache
    from polyqa.translate.engine import DecodingSettings, TranslationEngine, available_cores

    cores = available_cores()
    torch.set_num_threads(cores)  # what a careful user sets (torch's default is the physical cores)
    root = bench_dir()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    hf_dir = build_random_nllb(root)
    log(f"model ready in {hf_dir} ({time.perf_counter() - t0:.0f} s)")

    passages = make_passages(n_passages, seed=1)
    # Unique sentences: the pipeline deduplicates, so every engine gets the same unique set.
    sentences = list(dict.fromkeys(s.text for p in passages for s in split_sentences(p)))

    def forced(beam: int) -> DecodingSettings:
        # The engine's defaults (batch budget, input limit), with the output length forced to N.
        return DecodingSettings(beam_size=beam, max_length_ratio=0.0, max_length_extra=new_tokens,
                                min_output_tokens=new_tokens, max_output_tokens=None)

    t0 = time.perf_counter()
    engine = TranslationEngine(hf_dir, quantization="int8", models_dir=root / "models", decoding=forced(1))
    log(f"engine ready ({engine.ct2_dir.name}, {time.perf_counter() - t0:.0f} s incl. conversion if needed); "
        f"inter_threads={engine.inter_threads} intra_threads={engine.intra_threads} "
        f"max_batch_tokens={engine.decoding.max_batch_tokens}")
    source_tokens = engine.count_tokens(sentences)
    log(f"{len(passages)} passages, {len(sentences)} sentences ({sum(source_tokens) / len(sentences):.1f} source "
        f"tokens on average), {new_tokens} forced new tokens, {rounds} rounds, {cores} cores")
    expected_tokens = new_tokens * len(sentences)

    # ---- the three sides
    pre_tokenised = [["eng_Latn", *pieces, "</s>"] for pieces in engine._pieces(sentences)]

    def raw(beam: int, translator=None, use_vmap: bool = False) -> int:
        out = (translator or engine.translator).translate_batch(
            pre_tokenised, target_prefix=[["deu_Latn"]] * len(pre_tokenised), max_batch_size=args.raw_batch_size,
            batch_type="examples", beam_size=beam, max_decoding_length=new_tokens + 1,
            min_decoding_length=new_tokens + 1, use_vmap=use_vmap)
        return sum(len(r.hypotheses[0]) - 1 for r in out)

    def engine_translate(beam: int) -> int:
        engine.decoding = forced(beam)
        before = engine.stats.target_tokens
        engine.translate(sentences, "en", "de")
        return engine.stats.target_tokens - before

    hf_model = tokenizer = None
    if not args.skip_hf:
        tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        tokenizer.src_lang = "eng_Latn"
        hf_model = M2M100ForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32).eval()
        forced_id = tokenizer.convert_tokens_to_ids("deu_Latn")
        order = sorted(range(len(sentences)), key=lambda i: source_tokens[i])  # length-sorted, as the engine

    def hf_translate(beam: int) -> int:
        # A CTranslate2 built against the same OpenMP runtime as torch can change its thread count.
        if torch.get_num_threads() != cores:
            raise SystemExit(f"torch runs on {torch.get_num_threads()} threads, not {cores}")
        produced = 0
        for b in range(0, len(order), hf_batch[beam]):
            idx = order[b : b + hf_batch[beam]]
            batch = tokenizer([sentences[i] for i in idx], return_tensors="pt", padding=True)
            with torch.inference_mode():
                out = hf_model.generate(
                    **batch, forced_bos_token_id=forced_id, num_beams=beam, do_sample=False,
                    max_new_tokens=new_tokens + 1,  # the forced language token counts as new
                    min_new_tokens=new_tokens + 1)
            for row in out.tolist():
                generated = [t for t in row[1:] if t != tokenizer.pad_token_id]  # drop decoder start
                if len(generated) - 1 != new_tokens:  # minus the language token
                    raise SystemExit(f"HF produced {len(generated) - 1} tokens, expected {new_tokens}")
                produced += len(generated) - 1
        return produced

    def same_length(a: int, b: int) -> None:
        if a != expected_tokens or b != expected_tokens:
            raise SystemExit(f"output tokens differ: {a} and {b}, expected {expected_tokens}")

    batches_before = engine.stats.batches
    engine_translate(1)
    log(f"engine: {engine.stats.batches - batches_before} batches for {len(sentences)} sentences, "
        f"{engine.num_workers} workers")
    for beam in (1, 4):
        # Warm-up (untimed) only where a side runs for the first time at this beam.
        if not args.skip_hf:
            run.add(side_by_side(f"ct2_vs_hf_beam{beam}", ("hf_generate", lambda: hf_translate(beam)),
                                 ("engine", lambda: engine_translate(beam)), rounds=rounds, target=5.0,
                                 check=same_length))
        run.add(side_by_side(f"engine_vs_raw_beam{beam}", ("raw_ct2", lambda: raw(beam)),
                             ("engine", lambda: engine_translate(beam)), rounds=rounds, target=0.95,
                             check=same_length, warmup=args.skip_hf))
    hf_model = None  # free the float32 weights before the end-to-end part
    gc.collect()

    # ---- what the output layer costs: the raw side's translator against the same model with its
    # output vocabulary cut to the first K entries by a CTranslate2 vocabulary map (beam 1).
    if not args.skip_output_layer:
        with tempfile.TemporaryDirectory() as tmp:
            small_dir, vocabulary_size = small_vocabulary_copy(engine.ct2_dir, Path(tmp), args.small_vocab)
            small_vocab = ctranslate2.Translator(str(small_dir), inter_threads=engine.inter_threads,
                                                 intra_threads=engine.intra_threads)
            seconds = alternate("output_layer", [("full_vocab", lambda: raw(1)),
                                                 ("small_vocab", lambda: raw(1, small_vocab, use_vmap=True))],
                                rounds=rounds, warmup=True,
                                check=lambda out: same_length(out["full_vocab"], out["small_vocab"]))
            del small_vocab
        share = [1 - small / full for full, small in zip(seconds["full_vocab"], seconds["small_vocab"])]
        figure = run.add(value_figure("output_layer_share_beam1", share, unit="share", seconds=seconds, note=(
            f"1 - seconds with the output vocabulary cut to {args.small_vocab} entries / seconds with all "
            f"{vocabulary_size}: about the share of raw CTranslate2's time spent in the output layer")))
        log(f"output_layer_share_beam1: median {figure.median:.3f} (min {min(share):.3f}, max {max(share):.3f})")

    # ---- end to end vs raw CTranslate2, cold cache every time; beam 1, where translation is
    # shortest, so the pipeline's own work (segmentation, cache, detokenisation) weighs most
    with tempfile.TemporaryDirectory() as tmp:
        caches = iter(range(10**6))

        def pipeline() -> int:
            engine.decoding = forced(1)
            engine.cache = TranslationCache(Path(tmp) / f"cold-{next(caches)}.sqlite")
            hits, before = engine.stats.cache_hits, engine.stats.target_tokens
            try:
                engine.translate_passages(passages, "en", ["de"])
            finally:
                engine.cache.close()
                engine.cache = None
            assert engine.stats.cache_hits == hits, "the cache was not cold"
            return engine.stats.target_tokens - before

        run.add(side_by_side("pipeline_vs_raw", ("raw_ct2", lambda: raw(1)), ("pipeline", pipeline),
                             rounds=rounds, target=0.9, check=same_length, warmup=False))

    if args.compare_threads:
        one_worker = ctranslate2.Translator(str(engine.ct2_dir), inter_threads=1, intra_threads=cores)

        def one_by_cores() -> int:
            out = one_worker.translate_batch(
                pre_tokenised, target_prefix=[["deu_Latn"]] * len(pre_tokenised),
                max_batch_size=args.raw_batch_size, batch_type="examples", beam_size=4,
                max_decoding_length=new_tokens + 1, min_decoding_length=new_tokens + 1)
            return sum(len(r.hypotheses[0]) - 1 for r in out)

        run.add(side_by_side(f"threads_{engine.inter_threads}x1_vs_1x{cores}", ("1_worker", one_by_cores),
                             ("workers", lambda: raw(4)), rounds=rounds, check=same_length))
        del one_worker

    run.extra.update({
        "sentences": len(sentences), "source_tokens_mean": round(sum(source_tokens) / len(sentences), 1),
        "new_tokens": new_tokens, "engine_max_batch_tokens": engine.decoding.max_batch_tokens,
        "inter_threads": engine.inter_threads, "intra_threads": engine.intra_threads,
        "ctranslate2": ctranslate2.__version__, "ctranslate2_path": str(Path(ctranslate2.__file__).parent),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
    })
    engine.close()
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
