"""Fault injection: a corpus build killed at random moments resumes to the same bytes.

The corpus: XQuAD-R's 1,190 English questions (the LAReQA release at
``$POLYQA_DATA_DIR/xquad-r``; 1,185 after deduplication), translated by the tiny model into
German, ``shard_rows`` 100: 12 shards x 2 languages.

1. A reference build, uninterrupted, with its own translation cache; its wall time T.
2. ``--kills`` trials (seeded). Each starts ``polyqa build-corpus`` on a fresh output with a
   fresh translation cache (so every kill lands in real work), SIGKILLs its process group at a
   moment drawn uniformly from (0, T), and runs the same command again until it completes.
   A trial whose build ended before its moment is drawn again (counted as ``missed``).
3. After each resume: ``validate_corpus``; shards and quarantine byte for byte against the
   reference; shards the manifest listed at the kill that the resume wrote again
   (``redone_shards``: their inode or mtime changed); temporary files, ``_work/`` and a lock
   holder file left behind (``leftover_files``).

    python benchmarks/faults.py            # 10 kills
    python benchmarks/faults.py --quick    # 3 kills of a 300-question build

The last line printed is a JSON object: ``{"kills", "identical", "valid", "redone_shards",
"leftover_files", "missed", "phases", "seconds", "machine"}`` (counts over the kills).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from method import log, machine_state  # noqa: E402

SHARD_ROWS = 100


def build_command(config: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "polyqa.cli", "build-corpus", "--config", str(config), "--output", str(output),
            "--no-progress"]


def write_config(work: Path, source: Path, tiny: Path, cache: Path, name: str) -> Path:
    import yaml

    config = {"name": "faults", "sources": [{"kind": "squad_json", "path": str(source), "name": "xquad-r-en",
                                             "license": "CC-BY-SA-4.0"}],
              "languages": ["deu_Latn"], "shard_rows": SHARD_ROWS, "model": "tiny", "tiny_model_dir": str(tiny),
              "cache": str(cache), "card_dir": None,
              "decoding": {"beam_size": 1, "max_length_ratio": 1.2, "max_length_extra": 4}}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def source_file(work: Path, questions: int | None) -> Path:
    """XQuAD-R's English file, or its first articles holding at least ``questions`` questions."""
    from polyqa import paths

    english = paths.data_dir() / "xquad-r" / "en.json"
    if not english.exists():
        sys.exit(f"{english} not found: set POLYQA_DATA_DIR to the LAReQA release")
    if questions is None:
        return english
    data = json.loads(english.read_text("utf-8"))
    kept, count = [], 0
    for article in data["data"]:
        if count >= questions:
            break
        kept.append(article)
        count += sum(len(p["qas"]) for p in article["paragraphs"])
    path = work / "source.json"
    path.write_text(json.dumps({"data": kept}), encoding="utf-8")
    return path


def run(command: list[str], log_path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    with open(log_path, "ab") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=3600).returncode
    return code, time.perf_counter() - started


def listed_shards(output: Path) -> dict[str, tuple[int, int]]:
    """Shard files the manifest lists as finished, with their (inode, mtime)."""
    try:
        manifest = json.loads((output / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for entry in manifest.get("shards", []):
        path = output / entry["path"]
        if path.exists():
            out[entry["path"]] = (path.stat().st_ino, path.stat().st_mtime_ns)
    return out


def phase_of(output: Path) -> str:
    """Where the build was when it died, from what it left."""
    if not (output / ".polyqa-corpus.json").exists():
        return "start-up"
    try:
        manifest = json.loads((output / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return "ingest"
    if manifest.get("complete"):
        return "finishing"
    return "shards"


def leftovers(output: Path) -> list[str]:
    from polyqa.corpus.writer import temporary_files

    found = [str(p.relative_to(output)) for p in temporary_files(output)]
    found += [str(p.relative_to(output)) for p in output.rglob("*.tmp-*") if str(p.relative_to(output)) not in found]
    found += [name for name in ("_work", ".polyqa.lock.json") if (output / name).exists()]
    return found


def same_bytes(output: Path, reference: Path) -> bool:
    names = sorted(str(p.relative_to(reference)) for p in reference.glob("lang=*/*")) + ["quarantine.arrow"]
    mine = sorted(str(p.relative_to(output)) for p in output.glob("lang=*/*")) + ["quarantine.arrow"]
    return names == mine and all((output / n).read_bytes() == (reference / n).read_bytes() for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--questions", type=int, default=None, help="first articles with this many questions "
                        "(default: all 1,190)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 kills of a ~300-question build")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder)")
    args = parser.parse_args()
    if args.quick:
        args.kills, args.questions = 3, args.questions or 300

    from polyqa.corpus.validate import validate_corpus
    from polyqa.translate.tiny import build_tiny_model

    machine_start = machine_state()
    started = time.perf_counter()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="polyqa-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    failed = False
    try:
        tiny = build_tiny_model(work / "tiny", seed=0, quantization="float32").hf_dir.parent
        source = source_file(work, args.questions)
        reference = work / "reference"
        config = write_config(work, source, tiny, work / "reference.sqlite", "reference")
        code, reference_seconds = run(build_command(config, reference), work / "reference.log")
        if code != 0 or not validate_corpus(reference).ok:
            sys.exit(f"the reference build failed; see {work / 'reference.log'}")
        described = json.loads((reference / "manifest.json").read_text("utf-8"))
        records, n_shards = described["records"], described["n_shards"]
        log(f"reference: {records} QA pairs in {reference_seconds:.1f} s")

        rng = random.Random(args.seed)
        results = {"kills": 0, "identical": 0, "valid": 0, "redone_shards": 0, "leftover_files": 0, "missed": 0}
        phases: dict[str, int] = {}
        trial = 0
        while results["kills"] < args.kills:
            trial += 1
            if trial > args.kills * 5:
                sys.exit("too many builds ended before their kill: the machine is faster than the reference run")
            output, cache = work / f"trial-{trial}", work / f"trial-{trial}.sqlite"
            config = write_config(work, source, tiny, cache, f"trial-{trial}")
            moment = rng.uniform(0.0, reference_seconds)
            log_path = work / f"trial-{trial}.log"
            with open(log_path, "wb") as out:
                process = subprocess.Popen(build_command(config, output), stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)
                try:
                    process.wait(timeout=moment)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            if process.returncode != -signal.SIGKILL:
                results["missed"] += 1
                log(f"trial {trial}: the build ended before {moment:.1f} s; drawing again")
                shutil.rmtree(output, ignore_errors=True)
                continue
            results["kills"] += 1
            phase = phase_of(output)
            phases[phase] = phases.get(phase, 0) + 1
            finished = listed_shards(output)
            code, seconds = run(build_command(config, output), log_path)
            still = listed_shards(output)
            redone = sum(1 for path, identity in finished.items() if still.get(path) != identity)
            valid = code == 0 and validate_corpus(output).ok
            identical = valid and same_bytes(output, reference)
            left = leftovers(output)
            results["valid"] += valid
            results["identical"] += identical
            results["redone_shards"] += redone
            results["leftover_files"] += len(left)
            log(f"kill {results['kills']}: at {moment:.1f} s during {phase}, {len(finished)} shards finished; "
                f"resumed in {seconds:.1f} s: valid={valid} identical={identical} redone={redone} leftovers={left}")
            if valid and identical and not left and not args.keep:
                shutil.rmtree(output, ignore_errors=True)
                for path in work.glob(f"{cache.name}*"):  # the cache and its WAL files
                    path.unlink()
            else:
                failed = True
    finally:
        if failed or args.keep:
            log(f"kept {work} for inspection")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({**results, "phases": phases, "records": records, "shards": n_shards * 2,
                      "seed": args.seed, "reference_seconds": round(reference_seconds, 1),
                      "seconds": round(time.perf_counter() - started, 1),
                      "machine": {"start": machine_start, "end": machine_state()}}))


if __name__ == "__main__":
    main()
