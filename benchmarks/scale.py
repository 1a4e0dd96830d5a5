"""SQuAD scale, rehearsed: one build of a SQuAD-train-sized source into 10 languages.

The source (``squad_shaped.py``) has SQuAD v1.1 train's size: 87,599 questions over 19,035
passages of about 5 sentences and 120 words, all text distinct. It is built into 10 languages
with the tiny random model at its cheapest decoding (beam 1, outputs no longer than their
sources), so CTranslate2's share is small and the pipeline's own costs show. Every build is
``polyqa build-corpus`` in its own process, as a user runs it. ``--quick`` runs a tenth.

Figures (``benchmarks/method.py`` JSON; one round each, the runs are long):

- ``build_seconds`` and the stages of that build, from its manifest: ingest (of which
  segmentation), read (staged records), segments (dedup), translate (of which
  cache look-ups and writes, and the wait for CTranslate2), rows (projection and
  quality), table, write, manifest;
- ``non_ct2_share``: 1 - (seconds waiting for CTranslate2) / build seconds;
- ``peak_rss_mb`` of the build process (and, in a full run, ``rss_full_vs_quick``, the
  full build's peak over a tenth-size build's; target <= 1.2);
- ``cache_mb``: the translation cache on disk;
- ``rerun_share``: a rerun of the complete build / the first build (target <= 0.02);
- ``resume_units_redone`` and ``resume_seconds_lost``: a second cold build (its own empty
  cache) SIGKILLed once half its units are recorded, then run again: units started twice
  (target <= 1, the build runs one unit at a time) and the seconds the two parts took
  beyond the uninterrupted build;
- ``validate_rows_per_second``: ``polyqa validate`` on the corpus (target >= 50,000).

    python benchmarks/scale.py --quick      # 8,760 questions, 10 languages
    python benchmarks/scale.py              # 87,599 questions, 10 languages (about an hour on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from method import Run, log, value_figure  # noqa: E402
from squad_shaped import SQUAD_PASSAGES, SQUAD_QUESTIONS, write_squad_json  # noqa: E402

from polyqa.corpus.manifest import Manifest  # noqa: E402

LANGUAGES = ["deu_Latn", "fra_Latn", "spa_Latn", "ita_Latn", "por_Latn", "nld_Latn", "pol_Latn", "rus_Cyrl",
             "zho_Hans", "arb_Arab"]
UNIT_LINE = re.compile(r"^shard \d+ \S+: \d+ rows$")
STARTED_LINE = re.compile(r"(\d+) of (\d+) shards already done; building (\d+)")


def config(source: Path, cache: Path, models: Path) -> dict:
    return {
        "name": "squad-shaped", "sources": [{"kind": "squad_json", "path": str(source), "name": "squad-shaped",
                                             "license": "CC0-1.0"}],
        "languages": LANGUAGES, "shard_rows": 1000, "model": "tiny", "models_dir": str(models),
        "cache": str(cache),
        # The cheapest decoding: greedy, and no output longer than its source.
        "decoding": {"beam_size": 1, "max_length_ratio": 1.0, "max_length_extra": 0},
    }


def run_build(config_file: Path, output: Path, *, kill_after_units: int | None = None) -> dict:
    """``polyqa build-corpus`` in its own process: wall seconds, peak RSS, units it logged as recorded."""
    import psutil

    cmd = [sys.executable, "-m", "polyqa.cli", "build-corpus", "--config", str(config_file), "--output", str(output),
           "--no-progress"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    peak = [0]

    def watch() -> None:
        try:
            ps = psutil.Process(proc.pid)
            while proc.poll() is None:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
                peak[0] = max(peak[0], rss)
                time.sleep(0.2)
        except psutil.Error:
            pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    units = 0
    building = None
    killed = False
    tail: list[str] = []
    for line in proc.stderr:
        line = line.rstrip("\n")
        tail = (tail + [line])[-20:]
        if match := STARTED_LINE.search(line):
            building = int(match.group(3))
            log(f"build: {line}")
        if UNIT_LINE.match(line):
            units += 1
            if units % 100 == 0:
                log(f"build: {units} units recorded ({time.perf_counter() - started:.0f} s)")
            if kill_after_units is not None and units >= kill_after_units and not killed:
                proc.send_signal(signal.SIGKILL)
                killed = True
    proc.wait()
    seconds = time.perf_counter() - started
    watcher.join(timeout=1)
    if proc.returncode != 0 and not killed:
        raise RuntimeError(f"build failed ({proc.returncode}):\n" + "\n".join(tail))
    return {"seconds": seconds, "peak_rss_mb": peak[0] / 2**20, "units_logged": units, "building": building,
            "killed": killed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of SQuAD train")
    parser.add_argument("--workdir", type=Path, default=None, help="where sources, corpora and caches go "
                        "(default: a temporary folder, removed at the end)")
    parser.add_argument("--skip-resume", action="store_true", help="skip the SIGKILL and resume measurement")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    questions, passages = SQUAD_QUESTIONS // scale, SQUAD_PASSAGES // scale
    run = Run("scale", {"quick": args.quick, "questions": questions, "passages": passages,
                        "languages": len(LANGUAGES)})
    work = args.workdir or Path(tempfile.mkdtemp(prefix="polyqa-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    models = work / "models"

    def prepare(tag: str, n_questions: int, n_passages: int, cache: str) -> Path:
        source = work / f"source-{n_questions}.json"
        if not source.is_file():
            log(f"writing the SQuAD-shaped source: {n_questions} questions over {n_passages} passages")
            write_squad_json(source, n_questions, n_passages)
        path = work / f"{tag}.json"
        path.write_text(json.dumps(config(source, work / cache, models)), encoding="utf-8")
        return path

    def fresh(name: str) -> Path:
        out = work / name
        shutil.rmtree(out, ignore_errors=True)  # polyqa-scale's own folder
        return out

    for stale in work.glob("*.sqlite*"):
        stale.unlink()
    # The tiny model is built once, outside any timed build.
    subprocess.run([sys.executable, "-c", "import sys; from polyqa.translate.tiny import build_tiny_model; "
                    "build_tiny_model(sys.argv[1])", str(models / "tiny-nllb")], check=True)

    figures: dict[str, float] = {}
    if not args.quick:  # the memory reference: the same build at a tenth of the size
        small = run_build(prepare("tenth", SQUAD_QUESTIONS // 10, SQUAD_PASSAGES // 10, "cache-tenth.sqlite"),
                          fresh("corpus-tenth"))
        figures["peak_rss_tenth_mb"] = small["peak_rss_mb"]
        log(f"tenth: {small['seconds']:.0f} s, peak RSS {small['peak_rss_mb']:.0f} MB")

    config_file = prepare("main", questions, passages, "cache.sqlite")
    corpus = fresh("corpus")
    first = run_build(config_file, corpus)
    manifest = json.loads((corpus / "manifest.json").read_text("utf-8"))
    log(f"build: {first['seconds']:.0f} s, peak RSS {first['peak_rss_mb']:.0f} MB, "
        f"{manifest['records']} records x {len(manifest['languages'])} languages")
    stages = dict(manifest.get("stage_seconds") or {})
    translation = manifest["translation"]["totals"]
    ingest = manifest.get("ingest") or {}
    figures.update({
        "build_seconds": first["seconds"], "peak_rss_mb": first["peak_rss_mb"],
        "stage_ingest_seconds": ingest.get("seconds", 0.0),
        "stage_segmentation_seconds": ingest.get("segment_seconds", 0.0),
        **{f"stage_{name}_seconds": seconds for name, seconds in stages.items()},
        "stage_cache_seconds": translation.get("cache_seconds", 0.0),
        "stage_ct2_seconds": translation.get("model_seconds", 0.0),
        "non_ct2_share": 1 - translation.get("model_seconds", 0.0) / first["seconds"],
        "cache_mb": sum(p.stat().st_size for p in work.glob("cache.sqlite*")) / 2**20,
        "translated_segments": translation["translated"], "rows": sum(
            s["rows"] for s in manifest["shards"]),
    })
    if "peak_rss_tenth_mb" in figures:
        figures["rss_full_vs_tenth"] = figures["peak_rss_mb"] / figures["peak_rss_tenth_mb"]

    rerun = run_build(config_file, corpus)
    figures["rerun_seconds"] = rerun["seconds"]
    figures["rerun_share"] = rerun["seconds"] / first["seconds"]
    log(f"rerun: {rerun['seconds']:.1f} s ({figures['rerun_share']:.2%} of the build)")

    started = time.perf_counter()
    checked = subprocess.run([sys.executable, "-m", "polyqa.cli", "validate", str(corpus)], capture_output=True,
                             text=True)
    validate_seconds = time.perf_counter() - started
    if checked.returncode != 0:
        raise RuntimeError(f"validate failed:\n{checked.stdout[-2000:]}{checked.stderr[-2000:]}")
    figures["validate_seconds"] = validate_seconds
    figures["validate_rows_per_second"] = figures["rows"] / validate_seconds
    log(f"validate: {validate_seconds:.1f} s, {figures['validate_rows_per_second']:,.0f} rows/s")

    if not args.skip_resume:
        resume_config = prepare("resume", questions, passages, "cache-resume.sqlite")
        target = fresh("corpus-resume")
        total = len(manifest["shards"])
        part1 = run_build(resume_config, target, kill_after_units=total // 2)
        recorded = len(Manifest.load(target).shards)  # with the units recorded since it was written whole
        part2 = run_build(resume_config, target)
        started_before = part1["units_logged"] + 1  # the recorded ones and the one in flight
        redone = part2["building"] - (total - started_before)
        figures.update({"resume_units_recorded_at_kill": recorded, "resume_units_redone": redone,
                        "resume_seconds_lost": part1["seconds"] + part2["seconds"] - first["seconds"]})
        same = all((target / s["path"]).read_bytes() == (corpus / s["path"]).read_bytes()
                   for s in manifest["shards"])
        figures["resume_same_bytes"] = float(same)
        log(f"resume: killed after {part1['units_logged']} units ({recorded} in the manifest), resumed "
            f"{part2['building']} of {total}: {redone} redone, {figures['resume_seconds_lost']:.0f} s lost; "
            f"same shard bytes: {same}")

    targets = {"rss_full_vs_tenth": (1.2, False), "rerun_share": (0.02, False), "resume_units_redone": (1, False),
               "validate_rows_per_second": (50_000, True), "resume_same_bytes": (1, True)}
    for name, value in figures.items():
        target, higher = targets.get(name, (None, True))
        run.add(value_figure(name, [value], target=target, higher_is_better=higher))
    run.finish()
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
