"""Throughput of polyqa's hybrid-batch training vs plain sentence-transformers training.

Same model, same corpus texts, same batch size, steps, max_seq_length and
learning rate, and both trainers count tokens the same way; the only differences are polyqa's pieces: the hybrid batch
sampler (x-x-mono / x-y batches, no duplicate qa ids, language cap), the lazy
pair dataset, and polyqa's trainer subclass (token counting, run record).

- plain: ``SentenceTransformerTrainer`` + ``MultipleNegativesRankingLoss`` with
  its default batch sampler over a materialised (anchor, positive) dataset of
  the monolingual pairs of every language (questions x languages rows).
- hybrid: ``polyqa.train.train_retriever`` (strategy hybrid, alpha 0.5).

Runs alternate (plain, hybrid, plain, hybrid, ...) after one untimed warm-up,
so drifting load from other jobs on the machine hits both alike. Timed: the
``trainer.train()`` call only (model loading and saving excluded) for both.
Rounds go plain-hybrid, then hybrid-plain (ABBA). ``hybrid_vs_plain`` is
the ratio of steady-state examples per second (hybrid / plain), timed from
the end of step 1 to the end of step N (so each batch's sampling, text fetch
and tokenising are inside the timed span, the one-time set-up of
``trainer.train()`` is not); target >= 0.95. The ratio over the whole
``trainer.train()`` call is reported too (``hybrid_vs_plain_whole_train_call``). Because the model step dominates
and other jobs' load makes end-to-end times noisy, the data side (sampling,
fetching texts, tokenising; no model) is also timed batch by batch,
alternating plain and hybrid, and its difference is reported as a share of a
training step.

Model: the real all-MiniLM-L6-v2 (``--model minilm``, default) or a random
BERT with MiniLM's shape and tokenizer (``--model random-minilm``, same
token lengths, same cost per step). Texts: the first ``--questions`` XQuAD-R
questions and their passages (passages truncated at max_seq_length, 128 by
default: realistic lengths), imported into a corpus the way ``polyqa
import-parallel`` does; the LAReQA release is found under ``POLYQA_DATA_DIR``.

    python benchmarks/train.py                 # MiniLM, 4 languages, 6 steps x 2 rounds
    python benchmarks/train.py --quick         # 4 steps x 1 round

The last line printed is a JSON object with ``hybrid_vs_plain``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")



def xquad_r_dir() -> Path:
    from polyqa import paths

    return paths.data_dir() / "xquad-r"  # POLYQA_DATA_DIR: the LAReQA release


def first_questions(source: Path, out: Path, langs: list[str], limit: int) -> Path:
    """The first ``limit`` questions of the XQuAD-R files of ``langs`` (and English), as LAReQA files in ``out``.

    The files are parallel: the qa ids are taken from en.json and kept in every language.
    """
    from polyqa import languages as L

    out.mkdir(parents=True, exist_ok=True)
    english = json.loads((source / "en.json").read_text(encoding="utf-8"))
    keep = [qa["id"] for article in english["data"] for para in article["paragraphs"] for qa in para["qas"]][:limit]
    keep = set(keep)
    for code in dict.fromkeys(["en", *(L.iso639_1(lang) or lang for lang in langs)]):
        data = json.loads((source / f"{code}.json").read_text(encoding="utf-8"))
        articles = []
        for article in data["data"]:
            paragraphs = [{**para, "qas": [qa for qa in para["qas"] if qa["id"] in keep]}
                          for para in article["paragraphs"]]
            paragraphs = [para for para in paragraphs if para["qas"]]
            if paragraphs:
                articles.append({**article, "paragraphs": paragraphs})
        (out / f"{code}.json").write_text(json.dumps({**data, "data": articles}, ensure_ascii=False),
                                          encoding="utf-8")
    return out


def build_corpus(work: Path, langs: list[str], limit: int) -> Path:
    """An aligned corpus of the first ``limit`` XQuAD-R questions, imported as ``polyqa import-parallel`` does."""
    from polyqa.cli import main as polyqa

    subset = first_questions(xquad_r_dir(), work / "xquad-r", langs, limit)
    out = work / "corpus"
    code = polyqa(["import-parallel", str(subset), "--output", str(out), "--name", "xquad-r",
                   "--license", "CC-BY-SA-4.0", "--cards-dir", str(work / "cards")])
    if code != 0:
        raise SystemExit(f"polyqa import-parallel failed (exit {code})")
    return out


def random_minilm(out: Path) -> Path:
    """MiniLM's architecture and tokenizer with random weights."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from polyqa.encoders import resolve_encoder

    source = resolve_encoder("minilm")
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(source)).save_pretrained(out / "hf")
    AutoTokenizer.from_pretrained(source).save_pretrained(out / "hf")
    model = SentenceTransformer(str(out / "hf"))  # mean pooling added by sentence-transformers
    model.save(str(out / "st"))
    return out / "st"


def step_timer():
    """A trainer callback recording when each optimizer step ends (steady-state throughput)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    return StepTimer()


def steady_seconds(timer) -> float:
    """Seconds from the end of step 1 to the end of the last step: steps 2..N with their data loading."""
    return timer.ends[-1] - timer.ends[0]


def plain_run(model_path: str, corpus: Path, langs: list[str], args, out: Path) -> dict:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from polyqa.corpus import reader

    anchors, positives = [], []
    for lang in langs:
        table = reader.read_language(corpus, lang, columns=["question", "passage"])
        anchors += table.column("question").to_pylist()
        positives += table.column("passage").to_pylist()
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    model = SentenceTransformer(model_path)
    model.max_seq_length = args.max_seq_length

    class CountingTrainer(SentenceTransformerTrainer):
        # Count tokens the same way polyqa's trainer does, so per-step overhead matches.
        tokens = 0
        examples = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                self.tokens += sum(int(v.sum()) for k, v in inputs.items() if k.endswith("_attention_mask"))
                self.examples += int(next(v for k, v in inputs.items() if k.endswith("_input_ids")).shape[0])
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=3e-5,
        weight_decay=0.01,
        seed=0,
        save_strategy="no",
        logging_steps=args.steps,
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    timer = step_timer()
    trainer = CountingTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[timer],
    )
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    return {"examples": trainer.examples, "tokens": trainer.tokens, "seconds": wall,
            "steady_seconds": steady_seconds(timer)}


def hybrid_run(model_path: str, corpus: Path, langs: list[str], args, out: Path) -> dict:
    from polyqa.train import TrainConfig, train_retriever

    config = TrainConfig(
        corpus=str(corpus),
        output_dir=str(out),
        languages=langs,
        strategy="hybrid",
        alpha=0.5,
        base_model=model_path,
        batch_size=args.batch_size,
        max_steps=args.steps,
        max_seq_length=args.max_seq_length,
        checkpoint_steps=10**9,
        logging_steps=args.steps,
        seed=0,
    )
    timer = step_timer()
    record = train_retriever(config, callbacks=[timer]).record
    return {"examples": record["examples_seen"], "tokens": record["tokens_seen"], "seconds": record["wall_seconds"],
            "steady_seconds": steady_seconds(timer)}


def data_pipeline_ms(model_path: str, corpus: Path, langs: list[str], args, batches: int = 30) -> dict:
    """Data-side cost per batch (sampling, fetching texts, tokenising), no model step, alternated.

    The end-to-end figure is dominated by the model; this isolates what polyqa adds.
    """
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

    from polyqa.batching import BatchingConfig, BatchPlanner, load_training_pairs, pair_dataset
    from polyqa.corpus import reader

    model = SentenceTransformer(model_path)
    model.max_seq_length = args.max_seq_length
    collate = SentenceTransformerDataCollator(preprocess_fn=model.preprocess)
    pairs = load_training_pairs(corpus, langs)
    hybrid = pair_dataset(pairs, keep_index=False)
    planner = BatchPlanner(pairs.usable, pairs.languages, args.batch_size, BatchingConfig(seed=0))
    anchors, positives = [], []
    for lang in pairs.languages:
        table = reader.read_language(corpus, lang, columns=["question", "passage"])
        anchors += table.column("question").to_pylist()
        positives += table.column("passage").to_pylist()
    plain = Dataset.from_dict({"anchor": anchors, "positive": positives})
    k = len(pairs.languages)
    seconds = {"plain": 0.0, "hybrid": 0.0}
    done = 0
    epoch = 0
    while done < batches:
        perm = torch.randperm(len(plain), generator=torch.Generator().manual_seed(epoch)).tolist()
        plain_batches = iter([perm[i : i + args.batch_size] for i in range(0, len(perm), args.batch_size)])
        for batch in planner.epoch_batches(epoch):
            start = time.perf_counter()
            collate(plain.__getitems__(next(plain_batches)))
            mid = time.perf_counter()
            collate(hybrid.__getitems__(batch.flat_indices(k)))
            end = time.perf_counter()
            seconds["plain"] += mid - start
            seconds["hybrid"] += end - mid
            done += 1
            if done >= batches:
                break
        epoch += 1
    # The sampler's own cost (drawing a whole epoch of batches) per batch.
    start = time.perf_counter()
    n = sum(1 for _ in planner.epoch_batches(epoch + 1))
    sampler_ms = (time.perf_counter() - start) / n * 1e3
    return {
        "data_ms_per_batch_plain": seconds["plain"] / done * 1e3,
        "data_ms_per_batch_hybrid": seconds["hybrid"] / done * 1e3,
        "sampler_ms_per_batch": sampler_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["minilm", "random-minilm"], default="minilm")
    parser.add_argument("--langs", default="en,de,es,ru")
    parser.add_argument("--questions", type=int, default=480, help="qa ids per language")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="4 steps, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds = 4, 1

    import logging

    import torch
    import transformers

    from polyqa import languages as L

    logging.basicConfig(level=logging.WARNING)
    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    langs = L.normalize_many(args.langs.split(","))
    work = Path(tempfile.mkdtemp(prefix="polyqa-bench-train-"))
    corpus = build_corpus(work, langs, args.questions)
    print(f"corpus {corpus}", flush=True)
    if args.model == "minilm":
        from polyqa.encoders import resolve_encoder

        model_path = resolve_encoder("minilm")
    else:
        model_path = str(random_minilm(work / "model"))
    print(f"model {args.model} ({model_path}); {len(langs)} languages x {args.questions} questions; "
          f"batch {args.batch_size}; max_seq_length {args.max_seq_length}; {args.steps} steps x "
          f"{args.rounds} rounds; torch threads {torch.get_num_threads()}", flush=True)

    # Untimed warm-up: first-use costs (imports, allocator, kernels) hit neither side.
    plain_run(model_path, corpus, langs, argparse.Namespace(**{**vars(args), "steps": 1}), work / "warmup")

    runs: dict[str, list[dict]] = {"plain": [], "hybrid": []}
    for r in range(args.rounds):
        order = [("plain", plain_run), ("hybrid", hybrid_run)]
        for name, fn in order if r % 2 == 0 else order[::-1]:  # ABBA: drift hits both alike
            result = fn(model_path, corpus, langs, args, work / f"{name}-{r}")
            result["examples_per_second"] = result["examples"] / result["seconds"]
            # Steps 2..N: every step is a full batch, so examples = (N - 1) * batch size.
            result["steady_examples_per_second"] = (args.steps - 1) * args.batch_size / result["steady_seconds"]
            runs[name].append(result)
            print(f"round {r} {name:6s}: {result['examples']} examples, {result['tokens']} tokens, "
                  f"train() {result['seconds']:.1f} s ({result['examples_per_second']:.2f} examples/s), "
                  f"steps 2..{args.steps}: {result['steady_examples_per_second']:.2f} examples/s", flush=True)

    def total(name: str, key: str, seconds: str = "seconds") -> float:
        return sum(x[key] for x in runs[name]) / sum(x[seconds] for x in runs[name])

    def steady(name: str) -> float:
        return len(runs[name]) * (args.steps - 1) * args.batch_size / sum(x["steady_seconds"] for x in runs[name])

    per_round = [h["steady_examples_per_second"] / p["steady_examples_per_second"]
                 for p, h in zip(runs["plain"], runs["hybrid"])]
    summary = {
        "model": args.model,
        "languages": langs,
        "batch_size": args.batch_size,
        "max_seq_length": args.max_seq_length,
        "steps": args.steps,
        "rounds": args.rounds,
        "plain_examples_per_second": steady("plain"),
        "hybrid_examples_per_second": steady("hybrid"),
        "hybrid_vs_plain": steady("hybrid") / steady("plain"),
        "hybrid_vs_plain_per_round": per_round,
        "hybrid_vs_plain_whole_train_call": total("hybrid", "examples") / total("plain", "examples"),
        "tokens_per_example_plain": sum(x["tokens"] for x in runs["plain"]) / sum(x["examples"] for x in runs["plain"]),
        "tokens_per_example_hybrid": sum(x["tokens"] for x in runs["hybrid"]) / sum(x["examples"] for x in runs["hybrid"]),
        "hybrid_vs_plain_tokens_per_second_whole_train_call": total("hybrid", "tokens") / total("plain", "tokens"),
    }
    pipeline = data_pipeline_ms(model_path, corpus, langs, args)
    step_ms = 1e3 * sum(x["seconds"] for x in runs["hybrid"]) / (args.steps * args.rounds)
    summary.update(pipeline)
    summary["hybrid_data_overhead_share_of_step"] = (
        pipeline["data_ms_per_batch_hybrid"] - pipeline["data_ms_per_batch_plain"]
    ) / step_ms
    print(f"data side per batch: plain {pipeline['data_ms_per_batch_plain']:.1f} ms, hybrid "
          f"{pipeline['data_ms_per_batch_hybrid']:.1f} ms (sampler {pipeline['sampler_ms_per_batch']:.2f} ms); "
          f"training step {step_ms:.0f} ms", flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
