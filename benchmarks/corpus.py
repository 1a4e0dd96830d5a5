"""Corpus build at two sizes, side by side: peak memory and shard-writing throughput.

Synthesises QA pairs from the embedded sample (every record gets its own id and
a numbered question, so nothing is deduplicated away; passages repeat), writes
them as JSONL, and builds each size in its own subprocess with the tiny model
(English + one target language, fixed ``shard_rows`` so the shard count grows
with size). Each child reports its own peak RSS (``ru_maxrss``) and the time
spent in shard writing. Streaming means memory is bounded by one shard: the
target is peak RSS of the larger build within 1.2x of the smaller.

    python benchmarks/corpus.py                       # 2,000 and 20,000 QA pairs
    python benchmarks/corpus.py --sizes 500,5000      # quicker

The last line printed is a JSON object with ``rss_ratio`` and ``rows_per_s``.
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
    parser.add_argument("--sizes", default="2000,20000")
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

    from polyqa.translate.tiny import build_tiny_model

    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="polyqa-bench-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        tiny = build_tiny_model(work / "tiny-nllb")  # built once, outside the measured processes
        results = []
        for size in sizes:
            records = work / f"records-{size}.jsonl"
            synthesise(records, size)
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--size", str(size), "--records", str(records),
                 "--output", str(work / f"corpus-{size}"), "--tiny", str(tiny.hf_dir.parent),
                 "--shard-rows", str(args.shard_rows), "--language", args.language],
                capture_output=True, text=True, check=False)
            if out.returncode != 0:
                sys.exit(f"build of {size} failed:\n{out.stderr[-4000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            print(f"{size:>7} QA pairs: {result['rows']} rows in {result['shards']} shards/language, "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB, shard writing {result['rows_per_s_write']:.0f} rows/s, "
                  f"translation {result['translate_seconds']:.1f} s, total {result['total_seconds']:.1f} s")
        small, large = results[0], results[-1]
        summary = {
            "sizes": sizes,
            "peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in results],
            "rss_ratio": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
            "rows_per_s": round(sum(r["rows"] for r in results) / sum(r["write_seconds"] for r in results), 1),
            "rows_per_s_by_size": [round(r["rows_per_s_write"], 1) for r in results],
            "target_rss_ratio": 1.2,
        }
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
