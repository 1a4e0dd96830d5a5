"""One cell: its corpus inputs, its training (kept or run now) and its evaluation."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from polyqa import paths, storage
from polyqa.batching.pairs import MINED
from polyqa.corpus.manifest import Manifest
from polyqa.languages import ENGLISH
from polyqa.study.config import STUDY_EVAL_KEYS, StudyConfig
from polyqa.study.grid import Cell, cell_alpha, cell_model, cell_train_settings
from polyqa.study.results import CELLS_DIR, cell_record_path, metric_columns, per_query_path, training_columns, write_per_query

log = logging.getLogger(__name__)

MODELS_DIR = "models"  # in work_dir: one folder per trained model, keyed by its training inputs


def prepare_corpus(config: StudyConfig, train_titles: list[str] | None) -> tuple[Path, dict[str, Any]]:
    """The training corpus folder and its manifest (building it once when configured)."""
    if isinstance(config.corpus, str):
        corpus_dir = Path(paths.expand(config.corpus))
    else:
        from polyqa.corpus.job import build_corpus

        corpus_dir = Path(paths.expand(config.work_dir)) / "corpus"
        build = json.loads(json.dumps(config.corpus))  # deep copy
        if train_titles is not None:
            for source in build.get("sources", []):
                if isinstance(source, dict) and source.get("kind") == "parallel":
                    source["titles"] = train_titles
        build.setdefault("card_dir", None)
        build_corpus(build, corpus_dir)
    manifest = Manifest.load(corpus_dir)
    if manifest is None:
        raise FileNotFoundError(f"{corpus_dir}: no manifest.json; is this a polyqa corpus?")
    return corpus_dir, manifest


# What training reads of a corpus. The study's cache is keyed by these values, not by the shard
# files' checksums, so a new column in the corpus format does not invalidate finished cells.
TRAINING_COLUMNS = ("qa_id", "passage_id", "title", "question", "passage", "sentences", "answer_sentence",
                    "quality_pass")


def corpus_fingerprint(corpus_dir: str | Path, manifest: Manifest) -> str:
    """Identity of what training reads of a corpus: the training columns of every language, in order."""
    from polyqa.corpus import reader

    digest = hashlib.sha256()
    for lang in manifest.languages:
        table = reader.read_language(corpus_dir, lang, list(TRAINING_COLUMNS))
        digest.update(lang.encode())
        for batch in table.to_batches(max_chunksize=4096):
            digest.update(json.dumps(batch.to_pylist(), sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def translation_cost(config: StudyConfig, corpus_dir: Path, manifest: Manifest,
                     languages: Iterable[str]) -> dict[str, Any]:
    """Segments, tokens and seconds of machine translation the cell's languages need.

    Taken from the corpus build record when the corpus was translated; estimated
    from the English text and a measured engine throughput when it was imported.
    """
    targets = [lang for lang in languages if lang != ENGLISH]
    if not targets:
        return {"translation_segments": 0, "translation_tokens": 0, "translation_seconds": 0.0,
                "translation_estimated": False}
    per_lang = manifest.translation_per_language()
    if manifest.translates() and all(lang in per_lang for lang in targets):
        picked = [per_lang[lang] for lang in targets]
        return {
            "translation_segments": sum(int(p.get("translated", 0)) for p in picked),
            "translation_tokens": sum(int(p.get("source_tokens", 0)) for p in picked),
            "translation_seconds": sum(float(p.get("seconds", 0.0)) for p in picked),
            "translation_estimated": False,
        }
    from polyqa.corpus import reader

    english = reader.read_language(corpus_dir, ENGLISH, ["question", "sentences", "answer_text", "passage_id"])
    segments: set[str] = set()
    for row in english.to_pylist():
        segments.add(row["question"])
        segments.update(row["sentences"])
        if row["answer_text"]:
            segments.add(row["answer_text"])
    words = sum(len(s.split()) for s in segments)
    est = config.translation_estimate
    tokens = words * float(est["tokens_per_word"])
    return {
        "translation_segments": len(segments) * len(targets),
        "translation_tokens": int(tokens * len(targets)),
        "translation_seconds": tokens * len(targets) / float(est["tokens_per_second"]),
        "translation_estimated": True,
    }


def trained_record(train_dir: Path) -> dict[str, Any] | None:
    """The run record of a finished training in ``train_dir`` (model saved, record written), else None."""
    from polyqa.train.record import RUN_RECORD_FILE

    record = train_dir / RUN_RECORD_FILE
    if not record.is_file() or not (train_dir / "model" / "modules.json").is_file():
        return None
    try:
        return json.loads(record.read_text("utf-8"))
    except ValueError:
        return None  # a damaged record: train again (resuming from the newest checkpoint)


def train_cell(config: StudyConfig, cell: Cell, corpus_dir: Path, train_dir: Path,
               negatives_dir: Path | None = None) -> dict[str, Any]:
    """The cell's model in ``train_dir``: kept from an earlier run, or trained now. Returns its run record."""
    from polyqa.train import TrainConfig, train_retriever

    record = trained_record(train_dir)
    if record is not None:
        log.info("%s: model kept from an earlier run in %s", cell.label, train_dir)
        return record
    settings = {
        **cell_train_settings(config, cell),
        "corpus": str(corpus_dir),
        "output_dir": str(train_dir),
        "base_model": cell_model(config, cell),
        "languages": list(cell.languages),
        "strategy": cell.strategy,
        "languages_per_batch": cell.languages_per_batch,
        "seed": cell.seed,
        "resume": True,
    }
    if cell.hard_negatives == MINED:
        settings["negatives"] = str(negatives_dir)
    record = train_retriever(TrainConfig.from_dict(settings, source=f"study cell {cell.label}")).record
    # The model and its record are written: checkpoints only served to resume a killed run.
    shutil.rmtree(train_dir / "checkpoints", ignore_errors=True)
    return record


def run_cell(
    config: StudyConfig,
    cell: Cell,
    corpus_dir: Path,
    manifest: Manifest,
    eval_titles: Mapping[int, Path],
    key: str,
    model_key: str,
    negatives_dir: Path | None = None,
) -> dict[str, Any]:
    """Train (unless zero-shot, or kept) and evaluate one cell; returns its table row.

    ``eval_titles``: per ``config.evaluate`` index, the titles file of the articles evaluated
    (held-out split or a seeded sample). The row is written last, after the per-query file.
    """
    from polyqa.evaluate.run import EvaluateJob, EvaluationConfig

    work = Path(paths.expand(config.work_dir))
    model_root = work / MODELS_DIR / f"{cell.label}-{model_key}"
    cell_dir = work / CELLS_DIR / f"{cell.label}-{key}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {"cell": cell.label, "key": key, "train_key": model_key,
                           "base_model": cell_model(config, cell), "n_languages": cell.n_languages,
                           "strategy": cell.strategy, "alpha": cell_alpha(config, cell),
                           "languages_per_batch": cell.languages_per_batch, "seed": cell.seed,
                           "languages": ",".join(cell.languages)}
    if cell.hard_negatives is not None:  # only then: a study without mined cells keeps its columns
        row["hard_negatives"] = cell.hard_negatives
    model = cell_model(config, cell)
    if cell.n_languages:
        record = train_cell(config, cell, corpus_dir, model_root / "train", negatives_dir)
        model = str(model_root / "train" / "model")
        row.update(training_columns(record))
        row.update(translation_cost(config, corpus_dir, manifest, cell.languages))
    else:
        row.update(train_steps=0, train_examples=0, train_tokens=0, train_seconds=0.0,
                   train_pairs_used=0, train_pairs_skipped=0, train_pairs_skipped_reasons="{}",
                   translation_segments=0, translation_tokens=0, translation_seconds=0.0,
                   translation_estimated=False)
    seen = set(cell.languages)
    eval_seconds = 0.0
    per_query: dict[str, Mapping[str, list]] = {}
    for i, spec in enumerate(config.evaluate):
        spec = {k: v for k, v in spec.items() if k not in STUDY_EVAL_KEYS}
        bench = spec.pop("benchmark")
        data_dir = spec.pop("data_dir", None)
        if data_dir is None:
            continue  # e.g. MLQA-R when no folder is given
        started = time.perf_counter()
        job = EvaluateJob(EvaluationConfig(
            model=model,
            benchmark=bench,
            data_dir=paths.expand(data_dir),
            output=str(cell_dir / f"eval-{bench}.json"),
            articles_file=str(eval_titles[i]) if i in eval_titles else None,
            # With the model: a re-evaluation (a benchmark added) encodes only texts not seen before.
            cache_dir=str(model_root / "embcache"),
            **spec,
        ))
        result = job.run()
        queries = job.per_query()
        if queries is not None:
            per_query[bench] = queries
        eval_seconds += time.perf_counter() - started
        row.update(metric_columns(bench, result, seen, set(config.unseen)))
    row["eval_seconds"] = eval_seconds
    row["total_seconds"] = float(row.get("train_seconds") or 0) + float(row["translation_seconds"])
    record_path = cell_record_path(config, cell, key)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    write_per_query(per_query_path(record_path), per_query)
    storage.atomic_write_text(record_path, json.dumps(row, indent=2, default=str))
    return row
