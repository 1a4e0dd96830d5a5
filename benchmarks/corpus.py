"""Corpus build at two sizes, side by side: peak memory and shard-writing throughput.

Synthesises QA pairs from the embedded sample (every record gets its own id and
a numbered question, so nothing is deduplicated away; passages repeat), writes
them as JSONL, and builds each size in its own subprocess with the tiny model
(English + one target language, fixed ``shard_rows`` so the shard count grows
with size). Each child reports its own peak RSS (``ru_maxrss``) and the time
spent in shard writing. Streaming means memory is bounded by one shard: the
target is peak RSS of the larger build within 1.2x of the smaller.

    python benchmarks/corpus.py --quick               # 500 and 5,000 QA pairs, 5 rounds (about 1 min)
    python benchmarks/corpus.py                       # 2,000 and 20,000 QA pairs, 5 rounds

Sizes alternate small, large, then large, small (ABBA) over >= 5 rounds; the figures are the
medians of the per-round ``rss_ratio`` (large / small, target <= 1.2) and the large build's
shard-writing ``write_rows_per_s``. The last line printed is the JSON of ``benchmarks/method.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from method import Measured, Run, alternate, log, value_figure  # noqa: E402


def synthesise(path: Path, n: int) -> None:
    """``n`` JSONL records cycling over the sample's questions, each with its own id and question text."""
    sample = json.loads(resources.files("polyqa.data").joinpath("default_sample.json").read_text("utf-8"))
    base = [(a["title"], p["context"], qa) for a in sample["data"] for p in a["paragraphs"] for qa in p["qas"]]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            title, context, qa = base[i % len(base)]
            answer = qa["answers"][0]
            record = {"id": f"synthetic-{i}", "title": title, "passage": context,
                      "question": f"{qa['question'][:-1]} (case {i})?",
                      "answers": [{"text": answer["text"], "start": answer["answer_start"]}]}
            f.write(json.dumps(record) + "\n")


def child(args: argparse.Namespace) -> None:
    """One build, measured from inside the process that does it."""
    from polyqa.corpus.job import BuildJob, assemble_unit, write_unit

    config = {
        "name": f"bench-{args.size}", "sources": [{"kind": "jsonl", "path": args.records, "license": "CC0-1.0"}],
        "languages": [args.language], "shard_rows": args.shard_rows, "model": "tiny",
        "tiny_model_dir": args.tiny, "cache": None, "card_dir": None,
        "decoding": {"beam_size": 1, "max_length_ratio": 1.0, "max_length_extra": 4},
    }
    started = time.perf_counter()
    job = BuildJob.open(config, Path(args.output))
    translate_s = write_s = 0.0
    rows = 0
    for unit in job.units:  # build_unit, split in two so the writing is timed on its own
        t0 = time.perf_counter()
        built = assemble_unit(job.config, job.output, unit)
        t1 = time.perf_counter()
        result = write_unit(job.config, job.output, built)
        t2 = time.perf_counter()
        job.record(result)
        translate_s, write_s, rows = translate_s + t1 - t0, write_s + t2 - t1, rows + result.rows
        del built
    job.finish()
    print(json.dumps({
        "size": args.size, "rows": rows, "shards": job.manifest.n_shards,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "write_seconds": write_s, "rows_per_s_write": rows / write_s if write_s else None,
        "translate_seconds": translate_s, "total_seconds": time.perf_counter() - started,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 and 5,000 QA pairs")
    parser.add_argument("--sizes", default=None, help="two sizes, small,large (default 2000,20000; quick 500,5000)")
    parser.add_argument("--rounds", type=int, default=5, help="ABBA rounds (at least 5)")
    parser.add_argument("--shard-rows", type=int, default=1000)
    parser.add_argument("--language", default="deu_Latn")
    parser.add_argument("--workdir", help="keep inputs and corpora here (default: a temporary folder)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--records", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--tiny", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    small, large = (int(s) for s in (args.sizes or ("500,5000" if args.quick else "2000,20000")).split(","))
    run = Run("corpus", {"quick": args.quick, "sizes": [small, large], "shard_rows": args.shard_rows,
                         "rounds": args.rounds})

    from polyqa.translate.tiny import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="polyqa-bench-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        tiny = build_tiny_model(work / "tiny-nllb")  # built once, outside the measured processes
        for size in (small, large):
            synthesise(work / f"records-{size}.jsonl", size)
        builds = iter(range(10**6))

        def build(size: int):
            """One build in its own process; its peak RSS and shard-writing time, measured inside it."""
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--size", str(size), "--records",
                 str(work / f"records-{size}.jsonl"), "--output", str(work / f"corpus-{size}-{next(builds)}"),
                 "--tiny", str(tiny.hf_dir.parent), "--shard-rows", str(args.shard_rows), "--language",
                 args.language], capture_output=True, text=True, check=False)
            if out.returncode != 0:
                sys.exit(f"build of {size} failed:\n{out.stderr[-4000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            log(f"{size:>7} QA pairs: {result['rows']} rows in {result['shards']} shards/language, peak RSS "
                f"{result['peak_rss_mb']:.0f} MB, shard writing {result['rows_per_s_write']:.0f} rows/s, "
                f"translation {result['translate_seconds']:.1f} s, total {result['total_seconds']:.1f} s")
            return Measured(result["total_seconds"], result)

        results: dict[str, list[dict]] = {"small": [], "large": []}

        def keep(out: dict) -> None:
            for side, result in out.items():
                results[side].append(result)

        alternate("corpus", [("small", lambda: build(small)), ("large", lambda: build(large))],
                  rounds=args.rounds, warmup=False, check=keep)
        run.add(value_figure("rss_ratio", [b["peak_rss_mb"] / a["peak_rss_mb"]
                                           for a, b in zip(results["small"], results["large"])],
                             target=1.2, higher_is_better=False, unit="x",
                             note=f"peak RSS of the {large:,}-pair build / the {small:,}-pair build"))
        run.add(value_figure("write_rows_per_s", [r["rows_per_s_write"] for r in results["large"]], unit="rows/s",
                             note=f"shard writing throughput of the {large:,}-pair build"))
        run.extra.update({"peak_rss_mb": {side: [round(r["peak_rss_mb"], 1) for r in rs]
                                          for side, rs in results.items()}})
        run.finish()


if __name__ == "__main__":
    main()
