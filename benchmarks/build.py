"""The whole corpus build, side by side with the raw translation it contains.

Four sides, timed in the same rounds (order A B C D, then D C B A, ...), each from nothing
but the converted model on disk (cold translation cache, fresh output folder):

- ``cli``: ``polyqa build-corpus --config C --output O`` through ``polyqa.cli.main`` in
  this process. In-process, not a subprocess: a subprocess would add Python start-up
  and the import of torch, transformers and CTranslate2 (seconds) to every round, which
  is not the build; the flow runs in-process too, so the two are compared alike.
- ``flow``: the ``build-corpus`` Prefect flow (``flows/build_corpus.py``), in this
  process under ``prefect.testing.utilities.prefect_test_harness`` (a temporary Prefect
  server, started once before any timing).
- ``flow_no_heartbeat``: the same flow with Prefect's flow-run heartbeat turned off
  (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` unset, for this call only), to tell what
  polyqa's flow layer costs from what the heartbeat costs (see below). Deployments keep
  Prefect's default heartbeat; polyqa does not turn it off.
- ``raw``: what the build's translation costs at the least: load a
  ``ctranslate2.Translator`` (the engine's thread layout: one single-threaded worker per
  core), tokenise, ``translate_batch`` and detokenise exactly the unique segments the
  build sent to its model. The segments are read from the build itself through
  ``polyqa.translate.engine.observe_translations`` (questions, passage sentences,
  answers and, when projection markers are on, the marked answer sentences).

Both the build and the raw side load the model every round: the build's engine is made
per cache path (fresh each round) and released when the build finishes.

Source: the first ``--questions`` English XQuAD-R questions (``$POLYQA_DATA_DIR/xquad-r/
en.json``), written as a plain SQuAD JSON file (no sentence breaks, so polyqa segments the
passages), built into one language with the random NLLB-200-distilled-600M-shaped model
of ``benchmarks/translate.py`` (int8), beam 1, every output forced to N tokens
(``max_length_ratio: 0, max_length_extra: N, min_output_tokens: N, max_output_tokens:
null``). Every round checks that the build's target tokens (manifest) equal the raw side's.

Figures: ``build_vs_raw`` = raw seconds / CLI build seconds (target >= 0.85),
``flow_vs_cli`` = CLI seconds / flow seconds (target >= 0.9) and
``flow_vs_cli_no_heartbeat`` (no target), medians over >= 5 rounds.
The flow's seconds land just past whole seconds (14.08, 15.09, ...): Prefect 3.9 joins
each flow run's heartbeat thread at exit, and that thread sleeps in one-second steps, so
every flow run ends between 0 and 1 s late, whatever the flow does. The flow therefore
runs its tasks in its own run (a ``build-corpus-shards`` subflow only on Dask); the
rest of its cost (creating the run, task and artifact records) is a fraction of a
second, and all of it is fixed: the larger the build, the less it weighs.
Also the seconds of each stage of the CLI builds, timed inside ``BuildJob``'s phases:
ingest, segmentation, model load, translation, projection and quality, writing,
manifest and card.

    python benchmarks/build.py --quick     # 100 questions, 5 rounds (< 10 min on 2 cores)
    python benchmarks/build.py             # 200 questions, 7 rounds
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from method import Run, alternate, log, ratio_figure  # noqa: E402

STAGES = ("ingest", "segmentation", "model_load", "translation", "projection_quality", "writing",
          "manifest_card")


def english_subset(limit: int, out: Path) -> tuple[Path, int]:
    """The first ``limit`` English XQuAD-R questions as a plain SQuAD JSON file (sentence breaks dropped)."""
    from polyqa import paths

    source = json.loads((paths.data_dir() / "xquad-r" / "en.json").read_text(encoding="utf-8"))
    taken, articles = 0, []
    for article in source["data"]:
        paragraphs = []
        for para in article["paragraphs"]:
            if taken >= limit:
                break
            qas = para["qas"][: limit - taken]
            taken += len(qas)
            paragraphs.append({"context": para["context"], "qas": qas})
        if paragraphs:
            articles.append({"title": article["title"], "paragraphs": paragraphs})
        if taken >= limit:
            break
    out.write_text(json.dumps({"version": "xquad-r-en-subset", "data": articles}, ensure_ascii=False),
                   encoding="utf-8")
    return out, taken


class StageClock:
    """Seconds spent in each build stage, timed by wrapping the functions BuildJob's phases call.

    Active only while ``self.on`` is true (the CLI side), so the flow's concurrent task
    threads do not mix into the per-stage sums.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.on = False
        self._local = threading.local()

    def wrap(self, stage: str, fn):
        clock = self

        def timed_stage(*args, **kwargs):
            # Nested stages (segmentation inside ingest) count once, in the innermost stage.
            depth = getattr(clock._local, "stack", None)
            if depth is None:
                depth = clock._local.stack = []
            start = time.perf_counter()
            depth.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                inner = depth.pop()
                spent = time.perf_counter() - start
                if clock.on:
                    clock.seconds[stage] += spent - inner
                if depth:
                    depth[-1] += spent

        timed_stage.__wrapped__ = fn
        return timed_stage

    @contextlib.contextmanager
    def installed(self):
        """Wrap the stage functions where ``polyqa.corpus.job`` (and ingest) look them up."""
        import polyqa.corpus.cards
        import polyqa.corpus.ingest as ingest_mod
        import polyqa.corpus.job as job_mod

        patches = [
            (job_mod, "ingest", "ingest"), (job_mod, "read_stage_shard", "ingest"),
            (ingest_mod, "split_sentences", "segmentation"), (job_mod, "unique_segments", "segmentation"),
            (job_mod, "get_engine", "model_load"), (job_mod, "close_engines", "model_load"),
            (job_mod, "translate_segments", "translation"),
            (job_mod, "language_rows", "projection_quality"), (job_mod, "shard_statistics", "projection_quality"),
            (job_mod, "to_corpus_table", "writing"), (job_mod, "write_unit", "writing"),
            (polyqa.corpus.cards, "write_cards", "manifest_card"),
        ]
        methods = [(job_mod.BuildJob, "record", "manifest_card"), (job_mod.BuildJob, "finish", "manifest_card")]
        saved = []
        for owner, name, stage in patches:
            saved.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, self.wrap(stage, getattr(owner, name)))
        for owner, name, stage in methods:
            saved.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, self.wrap(stage, owner.__dict__[name]))
        # BuildJob.open: what is not ingest inside it (config, output folder, first manifest save).
        opened = job_mod.BuildJob.__dict__["open"]
        saved.append((job_mod.BuildJob, "open", opened))
        setattr(job_mod.BuildJob, "open", classmethod(self.wrap("manifest_card", opened.__func__)))
        try:
            yield self
        finally:
            for owner, name, original in reversed(saved):
                setattr(owner, name, original)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 questions, 5 rounds (< 10 min on 2 cores)")
    parser.add_argument("--questions", type=int, default=None, help="English QA pairs (quick 100, full 200)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (quick 5, full 7)")
    parser.add_argument("--new-tokens", type=int, default=8, help="forced output tokens per segment")
    parser.add_argument("--language", default="deu_Latn")
    parser.add_argument("--raw-batch-size", type=int, default=32,
                        help="raw side: max_batch_size in examples (CTranslate2 sorts by length itself; 32 "
                        "was raw CTranslate2's fastest at beam 1 on 2 cores, see translate.py)")
    args = parser.parse_args(argv)
    n_questions = args.questions or (100 if args.quick else 200)
    rounds = args.rounds or (5 if args.quick else 7)
    n = args.new_tokens
    run = Run("build", {"quick": args.quick, "questions": n_questions, "rounds": rounds, "new_tokens": n,
                        "language": args.language, "beam_size": 1, "raw_batch_size": args.raw_batch_size})

    import ctranslate2
    from tokenizers import Tokenizer

    from polyqa.cli import main as polyqa
    from polyqa.corpus.manifest import Manifest
    from polyqa.translate.engine import available_cores, observe_translations
    from translate import bench_dir, build_random_nllb

    root = bench_dir()
    root.mkdir(parents=True, exist_ok=True)
    hf_dir = build_random_nllb(root)
    work = Path(tempfile.mkdtemp(prefix="polyqa-bench-build-"))
    source, taken = english_subset(n_questions, work / "xquad-r-en.json")
    log(f"{taken} English XQuAD-R questions in {source}")

    def config_file(tag: str) -> Path:
        config = {
            "name": "bench-build",
            "sources": [{"kind": "squad_json", "path": str(source), "license": "CC-BY-SA-4.0"}],
            "languages": [args.language],
            "model": str(hf_dir),
            "quantization": "int8",
            "models_dir": str(root / "models"),  # the conversion is made once and shared with translate.py
            "cache": str(work / f"cache-{tag}.sqlite"),  # a fresh, cold translation cache every build
            "decoding": {"beam_size": 1, "max_length_ratio": 0, "max_length_extra": n, "min_output_tokens": n,
                         "max_output_tokens": None},
        }
        path = work / f"config-{tag}.json"  # JSON is YAML
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    # The flow module, imported from its file (flows/ is not a package).
    spec = importlib.util.spec_from_file_location("polyqa_flow_build_corpus", REPO / "flows" / "build_corpus.py")
    flow_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flow_module)

    clock = StageClock()
    segments: list[str] = []  # what the build sent to its model (the last build's)
    stage_runs: list[dict[str, float]] = []
    counter = iter(range(10**6))

    def clear_caches() -> None:
        import polyqa.corpus.ingest as ingest_mod

        split = getattr(ingest_mod.split_sentences, "__wrapped__", ingest_mod.split_sentences)
        split.cache_clear()  # in-process memo of passage segmentation: every build segments from scratch

    def observed(source_lang: str, target: str, asked: list[str]) -> None:
        segments.extend(asked)

    def cli() -> dict[str, Any]:
        tag = f"cli-{next(counter)}"
        output = work / tag
        clear_caches()
        segments.clear()
        clock.seconds.clear()
        clock.on = True
        start = time.perf_counter()
        try:
            with observe_translations(observed):
                code = polyqa(["build-corpus", "--config", str(config_file(tag)), "--output", str(output),
                               "--no-progress"])
        finally:
            clock.on = False
        total = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"polyqa build-corpus failed (exit {code})")
        stage_runs.append({**{s: clock.seconds.get(s, 0.0) for s in STAGES}, "total": total})
        return {"target_tokens": Manifest.load(output).translation_totals()["target_tokens"],
                "segments": list(segments)}

    def flow() -> dict[str, Any]:
        tag = f"flow-{next(counter)}"
        output = work / tag
        clear_caches()
        flow_module.build_corpus(output=str(output), config=str(config_file(tag)))
        return {"target_tokens": Manifest.load(output).translation_totals()["target_tokens"]}

    def flow_without_heartbeat() -> dict[str, Any]:
        """The same flow with Prefect's flow-run heartbeat off: what polyqa's flow layer costs by itself."""
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            return flow()

    ct2_dir = None
    tokenizer = None

    def raw() -> dict[str, Any]:
        """Load, tokenise, translate and detokenise the segments the last CLI build sent to its model."""
        asked = list(last_segments)
        translator = ctranslate2.Translator(str(ct2_dir), device="cpu", inter_threads=available_cores(),
                                            intra_threads=1)
        sources = [["eng_Latn", *enc.tokens, "</s>"]
                   for enc in tokenizer.encode_batch(asked, add_special_tokens=False)]
        results = translator.translate_batch(
            sources, target_prefix=[[args.language]] * len(sources), max_batch_size=args.raw_batch_size,
            batch_type="examples", beam_size=1, max_decoding_length=n + 1, min_decoding_length=n + 1)
        hypotheses = [r.hypotheses[0][1:] for r in results]  # without the language token
        tokenizer.decode_batch([[tokenizer.token_to_id(t) for t in h] for h in hypotheses],
                               skip_special_tokens=True)
        del translator
        return {"target_tokens": sum(len(h) for h in hypotheses)}

    # Untimed warm-ups: a CLI build first (converts the model if needed and lists the segments the
    # build sends to its model), then the flow (Prefect registers the flow and its tasks) and raw.
    with prefect_harness(), clock.installed():
        spent = time.perf_counter()
        first = cli()
        log(f"warm-up: cli {time.perf_counter() - spent:.2f} s (not counted)")
        stage_runs.clear()
        last_segments = first["segments"]
        if len(set(last_segments)) != len(last_segments):
            raise SystemExit("the build sent a segment to its model twice")
        from polyqa.corpus.config import load_config
        from polyqa.translate.convert import resolve_model

        ct2_dir = resolve_model(str(hf_dir), quantization="int8", models_dir=root / "models").ct2_dir
        tokenizer = Tokenizer.from_file(str(ct2_dir / "tokenizer.json"))
        markers = load_config(config_file("probe")).projection_settings().markers
        log(f"the build translated {len(last_segments)} unique segments (projection markers "
            f"{'on' if markers else 'off'}), target tokens {first['target_tokens']}")

        def check(out: dict[str, Any]) -> None:
            tokens = {side: o["target_tokens"] for side, o in out.items()}
            if len(set(tokens.values())) != 1 or tokens["raw"] != n * len(last_segments):
                raise SystemExit(f"target tokens differ between sides: {tokens} (expected {n * len(last_segments)})")
            if "cli" in out and sorted(out["cli"]["segments"]) != sorted(last_segments):
                raise SystemExit("a CLI build sent other segments to its model than the first build did")

        sides = [("raw", raw), ("cli", cli), ("flow", flow), ("flow_no_heartbeat", flow_without_heartbeat)]
        for side, fn in sides:
            if side == "cli":  # warmed up above
                continue
            spent = time.perf_counter()
            fn()
            log(f"warm-up: {side} {time.perf_counter() - spent:.2f} s (not counted)")
        seconds = alternate("build", sides, rounds=rounds, warmup=False, check=check)
    stage_runs = stage_runs[-rounds:]  # the timed CLI builds (not the warm-up)
    run.add(ratio_figure("build_vs_raw", seconds, "raw", "cli", target=0.85,
                         note="raw CTranslate2 (load, tokenise, translate, detokenise the build's segments) "
                              "seconds / polyqa build-corpus seconds"))
    run.add(ratio_figure("flow_vs_cli", seconds, "cli", "flow", target=0.9,
                         note="polyqa build-corpus seconds / build-corpus Prefect flow seconds"))
    run.add(ratio_figure("flow_vs_cli_no_heartbeat", seconds, "cli", "flow_no_heartbeat",
                         note="as flow_vs_cli, with Prefect's flow-run heartbeat off "
                              "(PREFECT_FLOWS_HEARTBEAT_FREQUENCY unset)"))
    stages = {s: round(statistics.median(r[s] for r in stage_runs), 3) for s in (*STAGES, "total")}
    accounted = sum(stages[s] for s in STAGES)
    stages["other"] = round(stages["total"] - accounted, 3)
    share = {s: round(stages[s] / stages["total"], 3) for s in (*STAGES, "other")}
    width = max(len(s) for s in stages)
    for s in (*STAGES, "other", "total"):
        print(f"  stage {s.ljust(width)} {stages[s]:7.3f} s" + (f"  {share[s]:6.1%}" if s in share else ""))
    run.extra.update({
        "questions": taken, "segments_translated": len(last_segments), "target_tokens": n * len(last_segments),
        "stage_seconds_median_cli": stages, "stage_share_cli": share,
        "stage_seconds_per_round_cli": [{k: round(v, 3) for k, v in r.items()} for r in stage_runs],
        "cli_in_process": True, "ctranslate2": ctranslate2.__version__,
    })
    run.finish()
    return 0


@contextlib.contextmanager
def prefect_harness():
    """A temporary Prefect server for the flow side, started (once) before any timing."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


if __name__ == "__main__":
    sys.exit(main())
