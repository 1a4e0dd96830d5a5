"""Export and mining at two corpus sizes, side by side: peak memory.

Writes a synthetic parallel QA set (English, German and French files in the LAReQA/SQuAD
layout, aligned by question id; every sentence distinct, drawn from a seeded pseudo-word
list), imports it with ``polyqa import-parallel`` at two sizes (``--sizes``, default 2,000
and 20,000 questions per language, ``shard_rows`` 1,000 so the shard count grows with the
size), and measures in a fresh process per run, from inside it (``ru_maxrss``):

- ``mine``: ``polyqa mine-negatives`` with a tiny random encoder (built once), 3 negatives
  per question over sentences, per language;
- ``export``: ``polyqa export --format sentence-transformers --pairs all --positive sentence``
  with those negatives (9 language pairs, every negative's text looked up per shard).

Peak memory is the work's own: each process imports what it needs first (torch, pyarrow,
sentence-transformers: some 600 MB that would hide any difference), then resets the kernel's
peak-RSS mark (``/proc/self/clear_refs``) and reads it (``VmHWM``) after the work; the
growth is that peak minus the RSS at the reset.

Each size is run alternately (small, large, then large, small: ABBA) over >= 5 rounds; the
figures are the medians of the per-round ratios large / small: ``export_rss_ratio`` (the
processes' peak RSS during the export, target <= 1.2), ``export_growth_ratio`` (the peak
above the RSS at the start of the export), ``mine_rss_ratio`` and ``mine_growth_ratio`` (no
target: the search index holds one language's candidate embeddings, which grow with the
corpus by design), and the large run's ``mine_passages_per_s``.

    python benchmarks/export.py --quick    # 500 and 5,000 questions, 5 rounds
    python benchmarks/export.py            # 2,000 and 20,000 questions, 5 rounds

The last line printed is the JSON of ``benchmarks/method.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from method import Measured, Run, alternate, log, value_figure  # noqa: E402

LANGUAGES = {"en": "", "de": "en", "fr": "ou"}  # file language -> suffix that makes its words its own
QUESTIONS_PER_PARAGRAPH = 4
SENTENCES_PER_PARAGRAPH = 5


def pseudo_words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def synthesise(folder: Path, questions: int, seed: int = 0) -> None:
    """One JSON file per language, ``questions`` questions over paragraphs of distinct sentences."""
    rng = random.Random(seed)
    words = pseudo_words(20_000, seed)
    paragraphs = []
    for p in range(-(-questions // QUESTIONS_PER_PARAGRAPH)):
        sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(12, 24))).capitalize() + "."
                     for _ in range(SENTENCES_PER_PARAGRAPH)]
        qas = []
        for q in range(QUESTIONS_PER_PARAGRAPH):
            k = (p + q) % SENTENCES_PER_PARAGRAPH
            answer = sentences[k].split()[2]
            qas.append({"id": f"q{p}-{q}", "question": f"What is {rng.choice(words)} {rng.choice(words)} {p}-{q}?",
                        "answer": answer, "sentence": k})
        paragraphs.append((f"Article {p // 5}", sentences, qas[: questions - p * QUESTIONS_PER_PARAGRAPH]))
    folder.mkdir(parents=True, exist_ok=True)
    for lang, suffix in LANGUAGES.items():
        def own(text: str) -> str:
            return " ".join(w + suffix if w[0].isalpha() else w for w in text.split()) if suffix else text

        articles: dict[str, list] = {}
        for title, sentences, qas in paragraphs:
            local = [own(s) for s in sentences]
            context = " ".join(local)
            items = []
            for qa in qas:
                answer = own(qa["answer"])
                start = context.index(local[qa["sentence"]]) + local[qa["sentence"]].index(answer)
                items.append({"id": qa["id"], "question": own(qa["question"]),
                              "answers": [{"text": answer, "answer_start": start}]})
            articles.setdefault(title, []).append({"context": context, "qas": items})
        data = {"version": "synthetic", "data": [{"title": t, "paragraphs": ps} for t, ps in articles.items()]}
        (folder / f"{lang}.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")


def status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status (Linux only)")


def child(args: argparse.Namespace) -> None:
    """One mining or export run, measured from inside the process that does it."""
    import polyqa.export.job  # noqa: F401  (imported before the mark is reset: not the work's memory)
    import polyqa.export.mining  # noqa: F401
    import sentence_transformers  # noqa: F401
    from polyqa.cli import main as cli

    base_mb = status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS mark := the RSS now
    started = time.perf_counter()
    if args.child == "mine":
        # No margin: a random encoder scores alike, and every question should keep its negatives.
        code = cli(["mine-negatives", args.corpus, "--model", args.encoder, "--output", args.output,
                    "--positive", "sentence", "--num-negatives", "3", "--relative-margin", "none"])
    else:
        code = cli(["export", args.corpus, "--format", "sentence-transformers", "--output", args.output,
                    "--pairs", "all", "--positive", "sentence", "--negatives", args.negatives])
    if code:
        sys.exit(f"{args.child} failed with exit code {code}")
    peak_mb = status_mb("VmHWM")
    extra: dict = {}
    if args.child == "export":
        extra["examples"] = sum(json.loads((Path(args.output) / "export.json").read_text())["counts"].values())
    if args.child == "mine":
        record = json.loads((Path(args.output) / "negatives.json").read_text())
        candidates = sum(v["candidates"] for v in record["languages"].values())
        seconds = sum(v["candidate_seconds"] for v in record["languages"].values())
        extra = {"candidates": candidates, "passages_per_s": candidates / seconds if seconds else None}
    print(json.dumps({"peak_rss_mb": peak_mb, "growth_mb": peak_mb - base_mb,
                      "seconds": time.perf_counter() - started, **extra}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 and 5,000 questions")
    parser.add_argument("--sizes", default=None, help="small,large questions per language (default 2000,20000)")
    parser.add_argument("--rounds", type=int, default=5, help="ABBA rounds (at least 5)")
    parser.add_argument("--workdir", help="keep inputs and outputs here (default: a temporary folder)")
    parser.add_argument("--child", choices=("mine", "export"), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--negatives", help=argparse.SUPPRESS)
    parser.add_argument("--encoder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    small, large = (int(s) for s in (args.sizes or ("500,5000" if args.quick else "2000,20000")).split(","))
    run = Run("export", {"quick": args.quick, "sizes": [small, large], "rounds": args.rounds,
                         "languages": list(LANGUAGES), "shard_rows": 1000})

    from polyqa.cli import main as cli
    from polyqa.tiny_encoder import build_tiny_encoder

    with tempfile.TemporaryDirectory(prefix="polyqa-bench-export-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for size in (small, large):
            synthesise(work / f"source-{size}", size)
            if cli(["import-parallel", str(work / f"source-{size}"), "--output", str(work / f"corpus-{size}"),
                    "--shard-rows", "1000", "--name", f"synthetic-{size}"]):
                sys.exit(f"import of {size} questions failed")
        texts = json.loads((work / f"source-{small}" / "en.json").read_text())["data"]
        encoder = build_tiny_encoder([p["context"] for a in texts for p in a["paragraphs"]][:200],
                                     work / "encoder", vocab_size=2000, max_seq_length=64)
        runs = iter(range(10**6))

        def measure(kind: str, size: int):
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--corpus", str(work / f"corpus-{size}"),
                 "--output", str(work / f"{kind}-{size}-{next(runs)}"), "--encoder", str(encoder),
                 "--negatives", str(work / f"negatives-{size}")], capture_output=True, text=True, check=False)
            if out.returncode != 0:
                sys.exit(f"{kind} of {size} failed:\n{out.stderr[-4000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            log(f"{kind:>6} {size:>6} questions: peak RSS {result['peak_rss_mb']:.0f} MB (+{result['growth_mb']:.1f} MB "
                f"during the work), {result['seconds']:.1f} s" + (f", {result['examples']:,} examples"
                                                                  if "examples" in result else ""))
            return Measured(result["seconds"], result)

        for size in (small, large):  # the negatives each export reads (mined again, measured, in the rounds)
            measure("mine", size)
            os.replace(max(work.glob(f"mine-{size}-*"), key=lambda p: p.stat().st_mtime), work / f"negatives-{size}")
        results: dict[str, list[dict]] = {}

        def keep(out: dict) -> None:
            for side, result in out.items():
                results.setdefault(side, []).append(result)

        sides = [(f"{kind}-{label}", (lambda k=kind, s=size: measure(k, s)))
                 for kind in ("mine", "export") for label, size in (("small", small), ("large", large))]
        alternate("export", sides, rounds=args.rounds, warmup=False, check=keep)

        def ratios(kind: str, key: str) -> list[float]:
            return [b[key] / max(a[key], 1.0) for a, b in zip(results[f"{kind}-small"], results[f"{kind}-large"])]

        for kind, target in (("export", 1.2), ("mine", None)):
            run.add(value_figure(f"{kind}_rss_ratio", ratios(kind, "peak_rss_mb"), target=target,
                                 higher_is_better=False, unit="x",
                                 note=f"peak RSS during {kind} on {large:,} questions / on {small:,}"))
            run.add(value_figure(f"{kind}_growth_ratio", ratios(kind, "growth_mb"), higher_is_better=False, unit="x",
                                 note=f"peak RSS above the RSS at the start of {kind}, {large:,} / {small:,} "
                                      "questions (at least 1 MB)"))
        run.add(value_figure("mine_passages_per_s", [r["passages_per_s"] for r in results["mine-large"]],
                             unit="passages/s", note=f"candidates encoded per second, {large:,} questions"))
        run.extra.update({key: {side: [round(r[key], 1) for r in rs] for side, rs in results.items()}
                          for key in ("peak_rss_mb", "growth_mb")})
        run.extra["examples"] = {side: rs[0]["examples"] for side, rs in results.items() if "examples" in rs[0]}
        run.finish()


if __name__ == "__main__":
    main()
