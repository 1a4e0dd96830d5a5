"""Throughput of polyqa's hybrid-batch training vs plain sentence-transformers training, side by side.

The two sides differ in the batch sampler and polyqa's pieces around it, nothing else:

- hybrid: ``polyqa.train.TrainJob`` (strategy hybrid, alpha 0.5): the hybrid batch
  sampler (x-x-mono / x-y batches, no qa id twice in a batch), the lazy pair
  dataset, polyqa's collator and trainer subclass (token and batch-kind counting).
- plain: ``SentenceTransformerTrainer`` with its default (random) batch sampler over
  a materialised (anchor, positive) dataset of exactly the pairs the hybrid side
  trains in its N steps, so both sides see the same N x batch-size pairs, hence the
  same text lengths; a subclass counts tokens as polyqa's trainer does.
- the same model (the real all-MiniLM-L6-v2, ``polyqa.encoders.resolve_encoder("minilm")``),
  the same training arguments (``polyqa.train.trainer.training_arguments``, batch sampler
  aside), loss (MultipleNegativesRankingLoss, scale 20), batch size, max_seq_length, steps.

Timed, on both sides: from the trainer's ``on_train_begin`` to the end of step N (so every
batch's sampling, text fetch, tokenising and collation is inside, the trainer's set-up and
the model saving are not). ``hybrid_vs_plain`` = plain seconds / hybrid seconds for the
same pairs = hybrid examples/s over plain examples/s, median over >= 5 ABBA rounds; target
>= 0.95. Alongside, per side, the medians of: the data side of a step (from the end of
one step to the start of the next: sampler, dataset fetch, tokenise, collate), the model
step, and the padded tokens per step (what the model actually computes on).

An earlier version gave the plain side a random sample of all pairs: in a few steps the
two sides then computed on different padded lengths (random 32-pair batches of these
texts vary by about 10% in padded tokens), and it read 0.84-0.90 where the sides
differed only by chance. With the same pairs, hybrid and plain match in model step
time, and the data side (under 35 ms a step) is about 1% of a 2.5-second step.

Texts: the first ``--questions`` XQuAD-R questions and their passages in ``--langs``,
imported into a corpus as ``polyqa import-parallel`` does (``POLYQA_DATA_DIR``).

    python benchmarks/train.py --quick      # 8 steps x 5 rounds (< 10 min on 2 cores)
    python benchmarks/train.py              # 14 steps (an epoch of 476 questions) x 7 rounds

The last line printed is the JSON of ``benchmarks/method.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from method import Measured, Run, alternate, log, ratio_figure, value_figure  # noqa: E402


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


def step_clock():
    """A trainer callback stamping the train start and each step's start and end."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.train_begin = 0.0
            self.begins: list[float] = []
            self.ends: list[float] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.train_begin = time.perf_counter()

        def on_step_begin(self, args, state, control, **kwargs):
            self.begins.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

        def result(self) -> dict:
            """Seconds of steps 1..N with their data, and per step: data side and model step (ms)."""
            previous = [self.train_begin, *self.ends[:-1]]
            return {"seconds": self.ends[-1] - self.train_begin,
                    "data_ms": [1e3 * (b - e) for b, e in zip(self.begins, previous)],
                    "step_ms": [1e3 * (e - b) for b, e in zip(self.begins, self.ends)]}

    return StepClock()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 steps x 5 rounds")
    parser.add_argument("--langs", default="en,de,es,ru")
    parser.add_argument("--questions", type=int, default=480, help="qa ids per language")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="steps per run (quick 8, full 14)")
    parser.add_argument("--rounds", type=int, default=None, help="ABBA rounds (quick 5, full 7)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    steps = args.steps or (8 if args.quick else 14)
    rounds = args.rounds or (5 if args.quick else 7)
    run = Run("train", {"quick": args.quick, "langs": args.langs, "questions": args.questions,
                        "batch_size": args.batch_size, "max_seq_length": args.max_seq_length, "steps": steps,
                        "rounds": rounds})

    import logging

    import torch
    import transformers
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from polyqa import languages as L
    from polyqa.batching.planner import decode_flat_index
    from polyqa.encoders import resolve_encoder
    from polyqa.train import TrainConfig
    from polyqa.train import trainer as st
    from polyqa.train.job import TrainJob

    logging.basicConfig(level=logging.WARNING)
    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    langs = L.normalize_many(args.langs.split(","))
    work = Path(tempfile.mkdtemp(prefix="polyqa-bench-train-"))
    corpus = build_corpus(work, langs, args.questions)
    model_path = resolve_encoder("minilm")
    counter = iter(range(10**6))

    def config(tag: str) -> TrainConfig:
        return TrainConfig(corpus=str(corpus), output_dir=str(work / tag), languages=langs, strategy="hybrid",
                           alpha=0.5, base_model=model_path, batch_size=args.batch_size, max_steps=steps,
                           max_seq_length=args.max_seq_length, checkpoint_steps=10**9, logging_steps=steps,
                           seed=0)

    # The pairs the hybrid side trains in its N steps (the planner is a pure function of seed and epoch).
    probe = TrainJob(config("probe"))
    pairs, k = probe.pairs, len(probe.pairs.languages)
    planned = []
    for epoch in range(steps):
        planned += [b.flat_indices(k) for b in probe.planner.epoch_batches(epoch)]
        if len(planned) >= steps:
            break
    planned = planned[:steps]
    qa, a, b = decode_flat_index([i for batch in planned for i in batch], k)
    texts = [pairs.text(i, x, y) for i, x, y in zip(qa.tolist(), a.tolist(), b.tolist())]
    plain_dataset = Dataset.from_dict({"anchor": [t["anchor"] for t in texts],
                                       "positive": [t["positive"] for t in texts]})
    log(f"corpus {corpus}: {pairs.num_questions} questions x {k} languages; both sides train the same "
        f"{len(texts)} pairs ({steps} steps of {args.batch_size}); model {model_path}; torch threads "
        f"{torch.get_num_threads()}")

    class CountingTrainer(SentenceTransformerTrainer):
        """Plain sentence-transformers, counting tokens and examples as polyqa's trainer does."""

        tokens = 0
        examples = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                self.tokens += sum(int(v.sum()) for key, v in inputs.items() if key.endswith("_attention_mask"))
                self.examples += int(next(v for key, v in inputs.items() if key.endswith("_input_ids")).shape[0])
                self.padded.append(sum(v.numel() for key, v in inputs.items() if key.endswith("_input_ids")))
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def plain() -> Measured:
        cfg = config(f"plain-{next(counter)}")
        model = SentenceTransformer(model_path)
        model.max_seq_length = args.max_seq_length
        clock = step_clock()
        trainer = CountingTrainer(model=model, args=st.training_arguments(cfg, BatchSamplers.BATCH_SAMPLER),
                                  train_dataset=plain_dataset, loss=MultipleNegativesRankingLoss(model, scale=cfg.scale),
                                  callbacks=[clock])
        trainer.padded = []
        trainer.train()
        out = clock.result()
        if trainer.examples != len(texts):
            raise SystemExit(f"plain trained {trainer.examples} examples, expected {len(texts)}")
        return Measured(out["seconds"], {**out, "tokens": trainer.tokens, "examples": trainer.examples,
                                         "padded": list(trainer.padded)})

    def hybrid() -> Measured:
        clock = step_clock()
        record = TrainJob(config(f"hybrid-{next(counter)}"), callbacks=[clock]).run().record
        out = clock.result()
        if record["examples_seen"] != len(texts):
            raise SystemExit(f"hybrid trained {record['examples_seen']} examples, expected {len(texts)}")
        return Measured(out["seconds"], {**out, "tokens": record["tokens_seen"], "examples": record["examples_seen"]})

    outputs: dict[str, list[dict]] = {"plain": [], "hybrid": []}

    def check(out: dict) -> None:
        for side, o in out.items():
            outputs[side].append(o)
        if out["plain"]["tokens"] != out["hybrid"]["tokens"]:
            raise SystemExit(f"the sides trained different tokens: {out['plain']['tokens']} plain, "
                             f"{out['hybrid']['tokens']} hybrid")

    seconds = alternate("train", [("plain", plain), ("hybrid", hybrid)], rounds=rounds, check=check)
    run.add(ratio_figure("hybrid_vs_plain", seconds, "plain", "hybrid", target=0.95,
                         note="plain ST seconds / polyqa hybrid seconds for the same pairs and steps "
                              "(= hybrid examples/s over plain examples/s)"))

    # Padded tokens per step: what the model computes on (attention and FFN run on padding too).
    tokenizer = SentenceTransformer(model_path).tokenizer

    def padded(batch_texts: list[dict]) -> int:
        total = 0
        for column in ("anchor", "positive"):
            lengths = [len(ids) for ids in tokenizer([t[column] for t in batch_texts], truncation=True,
                                                      max_length=args.max_seq_length)["input_ids"]]
            total += max(lengths) * len(lengths)
        return total

    hybrid_padded = [padded(texts[s * args.batch_size:(s + 1) * args.batch_size]) for s in range(steps)]
    per_side = {}
    for side in ("plain", "hybrid"):
        data = [ms for o in outputs[side] for ms in o["data_ms"]]
        step = [ms for o in outputs[side] for ms in o["step_ms"]]
        per_side[side] = {"data_ms_per_step_median": round(statistics.median(data), 2),
                          "model_step_ms_median": round(statistics.median(step), 1),
                          "seconds_median": round(statistics.median(seconds[side]), 3)}
        run.add(value_figure(f"{side}_data_ms_per_step", [statistics.median(o["data_ms"]) for o in outputs[side]],
                             unit="ms", note="sampler + dataset fetch + tokenise + collate, per step"))
        run.add(value_figure(f"{side}_model_step_ms", [statistics.median(o["step_ms"]) for o in outputs[side]],
                             unit="ms", note="forward + backward + optimizer, per step"))
    per_side["hybrid"]["padded_tokens_per_step"] = round(statistics.mean(hybrid_padded), 1)
    per_side["hybrid"]["padded_tokens_per_step_list"] = hybrid_padded
    per_side["plain"]["padded_tokens_per_step"] = round(statistics.mean(outputs["plain"][-1]["padded"]), 1)
    per_side["plain"]["padded_tokens_per_step_list"] = outputs["plain"][-1]["padded"]
    for side in ("plain", "hybrid"):
        print(f"{side:6s}: {per_side[side]['seconds_median']:.2f} s for {steps} steps; per step: data side "
              f"{per_side[side]['data_ms_per_step_median']:.1f} ms, model step "
              f"{per_side[side]['model_step_ms_median']:.0f} ms, {per_side[side]['padded_tokens_per_step']:.0f} "
              "padded tokens", flush=True)
    run.extra.update({
        "model": model_path, "languages": langs, "pairs": len(texts),
        "tokens_per_run": outputs["hybrid"][0]["tokens"], "per_side": per_side,
        "torch_threads": torch.get_num_threads(),
    })
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
