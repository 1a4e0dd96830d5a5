"""Translation throughput, side by side, on a random model with NLLB-200-distilled-600M's exact shape.

Comparisons (each pair measured in the same run, alternating, ratios only):
  1. polyqa's engine (CTranslate2 int8) vs transformers ``generate`` (float32),
     greedy and beam 4, same sentences;
  2. polyqa's end-to-end ``translate_passages`` (segmentation, tokenisation,
     batching, cold-cache lookups and writes, detokenisation) vs a raw
     ``Translator.translate_batch`` on pre-tokenised sentences, same settings.

Random weights babble, so every engine is forced to produce exactly N new
tokens (transformers counts the forced language token among new tokens,
CTranslate2 counts the target prefix in the decoding length); the script checks
the lengths are equal before reporting.

The model (random weights, 615M parameters, 256,206-token vocabulary) is built
once into ~/.cache/polyqa/bench (or $POLYQA_BENCH_DIR) and converted to int8 by
the engine's own conversion cache.

    python benchmarks/translate.py --quick      # < 10 min on 2 cores, build included
    python benchmarks/translate.py              # more sentences, more repeats

Last line printed: one JSON object with ct2_vs_hf_beam1, ct2_vs_hf_beam4,
pipeline_vs_raw (speed-up factors: >1 means the first is faster).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")



def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_dir() -> Path:
    return Path(os.environ.get("POLYQA_BENCH_DIR", Path.home() / ".cache" / "polyqa" / "bench"))


def build_random_nllb_600m(output: Path) -> Path:
    """Random-weight M2M100 with NLLB-200-distilled-600M's config + a 256,206-token NLLB tokenizer."""
    hf_dir = output / "nllb-600m-random"
    if (hf_dir / "model.safetensors").is_file() and (hf_dir / "tokenizer.json").is_file():
        return hf_dir
    from polyqa.translate.sample_text import sample_lines
    from polyqa.translate.tiny import NLLB_600M, NLLB_VOCAB_SIZE, build_hf_model, build_tokenizer, train_sentencepiece

    log("building the random NLLB-600M-shaped model (once)")
    tokenizer = build_tokenizer(train_sentencepiece(sample_lines(), 600, 0), vocab_size=NLLB_VOCAB_SIZE)
    assert len(tokenizer) == NLLB_VOCAB_SIZE, len(tokenizer)
    # transformers' default init (std 0.02), as in a real checkpoint's scale.
    model = build_hf_model(NLLB_VOCAB_SIZE, 0, init_std=0.02, architecture=NLLB_600M)
    tmp = Path(tempfile.mkdtemp(prefix=".nllb-600m-random.", dir=output))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    del model
    gc.collect()
    if hf_dir.exists():
        import shutil

        shutil.rmtree(hf_dir)
    os.rename(tmp, hf_dir)
    return hf_dir


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


def timed(fn):
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workload, one repeat (< 10 min on 2 cores)")
    parser.add_argument("--new-tokens", type=int, default=None, help="forced output tokens per sentence")
    parser.add_argument("--passages", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--max-batch-tokens", type=int, default=None)
    parser.add_argument("--hf-batch-size", type=int, default=16)
    parser.add_argument("--skip-hf", action="store_true", help="skip the transformers comparison (section 1)")
    parser.add_argument(
        "--compare-threads",
        action="store_true",
        help="also time the engine's default threads (cores x 1) against CTranslate2's usual 1 x cores",
    )
    args = parser.parse_args(argv)
    new_tokens = args.new_tokens or (12 if args.quick else 24)
    n_passages = args.passages or (10 if args.quick else 64)
    repeats = args.repeats or (1 if args.quick else 3)
    # quick: ~31 sentences of ~50 tiny-vocabulary tokens -> 2 batches, one per worker (2 cores)
    max_batch_tokens = args.max_batch_tokens or (1024 if args.quick else 2048)

    import ctranslate2
    import torch
    from transformers import AutoTokenizer, M2M100ForConditionalGeneration

    from polyqa.segment import split_sentences
    from polyqa.translate.engine import DecodingSettings, TranslationEngine, available_cores

    root = bench_dir()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    hf_dir = build_random_nllb_600m(root)
    log(f"model ready in {hf_dir} ({time.perf_counter() - t0:.0f} s)")

    passages = make_passages(n_passages, seed=1)
    # Unique sentences: the pipeline deduplicates, so every engine gets the same unique set.
    sentences = list(dict.fromkeys(s.text for p in passages for s in split_sentences(p)))
    log(f"{len(passages)} passages, {len(sentences)} sentences, {new_tokens} forced new tokens, "
        f"{repeats} repeat(s), max_batch_tokens={max_batch_tokens}, cores={available_cores()}")

    def settings(beam: int) -> DecodingSettings:
        return DecodingSettings(
            beam_size=beam,
            max_length_ratio=0.0,
            max_length_extra=new_tokens,
            min_output_tokens=new_tokens,
            max_output_tokens=None,
            max_batch_tokens=max_batch_tokens,
        )

    t0 = time.perf_counter()
    engine = TranslationEngine(hf_dir, quantization="int8", models_dir=root / "models", decoding=settings(1))
    log(f"engine ready ({engine.ct2_dir.name}, {time.perf_counter() - t0:.0f} s incl. conversion if needed); "
        f"inter_threads={engine.inter_threads} intra_threads={engine.intra_threads}")
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    tokenizer.src_lang = "eng_Latn"
    hf_model = M2M100ForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32).eval()
    forced_id = tokenizer.convert_tokens_to_ids("deu_Latn")

    # ---- transformers generate: length-sorted batches too, to be fair to it
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))

    def hf_translate(beam: int) -> list[int]:
        lengths = [0] * len(sentences)
        for b in range(0, len(order), args.hf_batch_size):
            idx = order[b : b + args.hf_batch_size]
            batch = tokenizer([sentences[i] for i in idx], return_tensors="pt", padding=True)
            with torch.inference_mode():
                out = hf_model.generate(
                    **batch,
                    forced_bos_token_id=forced_id,
                    num_beams=beam,
                    do_sample=False,
                    max_new_tokens=new_tokens + 1,  # the forced language token counts as new
                    min_new_tokens=new_tokens + 1,
                )
            for row, i in zip(out.tolist(), idx):
                generated = [t for t in row[1:] if t != tokenizer.pad_token_id]  # drop decoder start
                lengths[i] = len(generated) - 1  # minus the language token
        return lengths

    def engine_translate(beam: int) -> tuple[list[str], int]:
        engine.decoding = settings(beam)
        engine.stats.target_tokens = engine.stats.batches = 0
        out = engine.translate(sentences, "en", "de")
        if engine.stats.batches < engine.num_workers:
            log(f"warning: {engine.stats.batches} batches for {engine.num_workers} workers; some sat idle")
        return out, engine.stats.target_tokens

    results: dict[str, float] = {}
    details: dict[str, dict] = {}
    for beam in () if args.skip_hf else (1, 4):
        hf_times, ct2_times = [], []
        for r in range(repeats):
            seconds, hf_lengths = timed(lambda: hf_translate(beam))
            hf_times.append(seconds)
            log(f"beam {beam} repeat {r}: HF generate {seconds:.1f} s")
            seconds, (ct2_out, ct2_tokens) = timed(lambda: engine_translate(beam))
            ct2_times.append(seconds)
            log(f"beam {beam} repeat {r}: polyqa engine {seconds:.1f} s")
        if set(hf_lengths) != {new_tokens}:
            raise SystemExit(f"HF produced lengths {sorted(set(hf_lengths))}, expected {new_tokens}")
        if ct2_tokens != new_tokens * len(sentences):
            raise SystemExit(f"CTranslate2 produced {ct2_tokens} tokens, expected {new_tokens * len(sentences)}")
        ratio = statistics.median(hf_times) / statistics.median(ct2_times)
        results[f"ct2_vs_hf_beam{beam}"] = round(ratio, 2)
        details[f"beam{beam}"] = {"hf_s": hf_times, "ct2_s": ct2_times}
        log(f"beam {beam}: engine is {ratio:.2f}x HF generate")
    hf_model = None  # free the float32 weights before the end-to-end part
    gc.collect()

    # ---- end to end vs raw CTranslate2, beam 4 (the engine's default), cold cache each time
    beam = 4
    engine.decoding = settings(beam)
    pre_tokenised = [["eng_Latn", *tokenizer.tokenize(s), "</s>"] for s in sentences]

    def raw() -> int:
        out = engine.translator.translate_batch(
            pre_tokenised,
            target_prefix=[["deu_Latn"]] * len(pre_tokenised),
            max_batch_size=max_batch_tokens,
            batch_type="tokens",
            beam_size=beam,
            max_decoding_length=new_tokens + 1,
            min_decoding_length=new_tokens + 1,
        )
        return sum(len(r.hypotheses[0]) - 1 for r in out)

    def pipeline(cache_path: Path) -> int:
        from polyqa.translate.cache import TranslationCache

        engine.cache = TranslationCache(cache_path)
        engine.stats.target_tokens = engine.stats.batches = 0
        engine.stats.cache_hits = 0
        engine.translate_passages(passages, "en", ["de"])
        engine.cache.close()
        engine.cache = None
        assert engine.stats.cache_hits == 0
        return engine.stats.target_tokens

    raw_times, pipe_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # ABBA order: a drift in machine load (shared cores) hits both sides alike
        for r in range(max(repeats, 2) * 2):
            first_raw = r % 4 in (0, 3)
            for kind in ("raw", "pipeline") if first_raw else ("pipeline", "raw"):
                if kind == "raw":
                    seconds, raw_tokens = timed(raw)
                    raw_times.append(seconds)
                else:
                    seconds, pipe_tokens = timed(lambda: pipeline(Path(tmp) / f"cold-{r}.sqlite"))
                    pipe_times.append(seconds)
            log(f"end to end repeat {r}: raw {raw_times[-1]:.1f} s, pipeline {pipe_times[-1]:.1f} s")
    if raw_tokens != pipe_tokens or raw_tokens != new_tokens * len(sentences):
        raise SystemExit(f"token counts differ: raw {raw_tokens}, pipeline {pipe_tokens}")
    results["pipeline_vs_raw"] = round(statistics.median(raw_times) / statistics.median(pipe_times), 2)
    details["end_to_end_beam4"] = {"raw_s": raw_times, "pipeline_s": pipe_times}

    if args.compare_threads:
        cores = available_cores()
        one_worker = ctranslate2.Translator(str(engine.ct2_dir), inter_threads=1, intra_threads=cores)
        default_times, single_times = [], []
        for r in range(max(repeats, 2)):
            seconds, _ = timed(raw)
            default_times.append(seconds)
            seconds, _ = timed(
                lambda: one_worker.translate_batch(
                    pre_tokenised,
                    target_prefix=[["deu_Latn"]] * len(pre_tokenised),
                    max_batch_size=max_batch_tokens,
                    batch_type="tokens",
                    beam_size=beam,
                    max_decoding_length=new_tokens + 1,
                    min_decoding_length=new_tokens + 1,
                )
            )
            single_times.append(seconds)
            log(f"threads repeat {r}: {engine.inter_threads}x{engine.intra_threads} {default_times[-1]:.1f} s, "
                f"1x{cores} {single_times[-1]:.1f} s")
        results["threads_default_vs_1xcores"] = round(
            statistics.median(single_times) / statistics.median(default_times), 2
        )
        details["threads_beam4"] = {"default_s": default_times, "one_worker_s": single_times}
        del one_worker
    engine.close()

    summary = {
        **results,
        "targets": {"ct2_vs_hf_beam1": 5.0, "ct2_vs_hf_beam4": 5.0, "pipeline_vs_raw": 0.9},
        "sentences": len(sentences),
        "new_tokens": new_tokens,
        "repeats": repeats,
        "max_batch_tokens": max_batch_tokens,
        "engine_batches": engine.stats.batches,
        "inter_threads": engine.inter_threads,
        "intra_threads": engine.intra_threads,
        "ctranslate2": ctranslate2.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "seconds": details,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
