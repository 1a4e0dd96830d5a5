"""A BEIR-format folder as a benchmark (``--benchmark beir --data-dir FOLDER``): nDCG@10 and Recall@100.

Layout (BEIR's ``GenericDataLoader``; what ``polyqa export --format beir`` writes per language)::

    <dir>/corpus.jsonl        {"_id", "title", "text"}
    <dir>/queries.jsonl       {"_id", "text"}
    <dir>/qrels/<split>.tsv   query-id <tab> corpus-id <tab> score   (a header line)

Every document is held in memory and searched by every query, as MIRACL's judged passages are
(the same scorer). The folder's language is ``--languages`` when given, else its name when that
is a language code (``beir/deu_Latn``), else ``und``. A qrel naming an unknown query or document,
and a repeated ``_id``, are quarantined with file and line.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from polyqa import languages as L
from polyqa import paths
from polyqa.errors import PolyqaError
from polyqa.evaluate.benchmark import Benchmark, BenchmarkFormatError, Candidate, Query, register_benchmark
from polyqa.evaluate.result import summarize_miracl
from polyqa.evaluate.retrieval import score_miracl

NAME = "beir"
DEFAULT_SPLIT = "test"
UNKNOWN_LANGUAGE = "und"


def _jsonl(path: Path, fields: tuple[str, ...]):
    if not path.is_file():
        raise PolyqaError(f"{path.name} not found", where=str(path.parent),
                          todo="pass a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkFormatError(f"{path}: line {line_no}: not valid JSON ({exc.msg})") from None
            for key in fields:
                if key not in row:
                    raise BenchmarkFormatError(f"{path}: line {line_no}: missing field {key!r}")
            yield line_no, row


def _language(folder: Path, languages) -> str:
    if languages:
        given = L.normalize_many(list(languages))
        if len(given) != 1:
            raise PolyqaError(f"a BEIR folder holds one language; got {given}", where=str(folder))
        return given[0]
    try:
        return L.normalize(folder.name)
    except (KeyError, ValueError):
        return UNKNOWN_LANGUAGE


def passage_text(title: str, text: str) -> str:
    """What is encoded for a document: "title text", as for MIRACL's passages."""
    return f"{title} {text}".strip() if title else text


def load_beir_folder(data_dir, *, languages=None, max_questions: int | None = None,
                     split: str | None = None) -> Benchmark:
    if data_dir is None:
        raise PolyqaError(f"benchmark {NAME} needs a folder", todo="set data_dir (--data-dir) to the BEIR folder")
    folder = Path(paths.expand(data_dir))
    if not folder.is_dir():
        raise PolyqaError("BEIR folder not found", where=str(folder), todo="check --data-dir")
    split = split or DEFAULT_SPLIT
    lang = _language(folder, languages)
    quarantine: list[dict] = []
    candidates: list[Candidate] = []
    position: dict[str, int] = {}
    for line_no, row in _jsonl(folder / "corpus.jsonl", ("_id", "text")):
        docid = str(row["_id"])
        if docid in position:
            quarantine.append({"file": str(folder / "corpus.jsonl"), "row": line_no, "qid": None,
                               "reason": f"repeated _id {docid!r}"})
            continue
        position[docid] = len(candidates)
        title = str(row.get("title") or "")
        candidates.append(Candidate(lang, passage_text(title, str(row["text"])), "", title, docid))
    texts: dict[str, str] = {}
    for line_no, row in _jsonl(folder / "queries.jsonl", ("_id", "text")):
        texts.setdefault(str(row["_id"]), str(row["text"]))
    qrels = folder / "qrels" / f"{split}.tsv"
    if not qrels.is_file():
        raise PolyqaError(f"no qrels for split {split!r}", where=str(qrels), todo="choose the split with --split")
    judged: dict[str, dict[int, float]] = {}
    with open(qrels, encoding="utf-8", newline="") as fh:
        for line_no, parts in enumerate(csv.reader(fh, delimiter="\t"), 1):
            if line_no == 1 or not parts:  # the header: query-id corpus-id score
                continue
            if len(parts) != 3:
                raise BenchmarkFormatError(f"{qrels}: line {line_no}: expected query-id, corpus-id, score")
            qid, docid, score = parts
            reason = ("unknown query" if qid not in texts else "unknown document" if docid not in position
                      else None)
            if reason:
                quarantine.append({"file": str(qrels), "row": line_no, "qid": qid, "reason": f"{reason} {docid!r}"})
                continue
            if float(score) > 0:
                judged.setdefault(qid, {})[position[docid]] = float(score)
    queries = [Query(qid, lang, texts[qid], "", tuple(rel), tuple(rel.values()))
               for qid, rel in judged.items()][:max_questions]
    if not queries:
        raise PolyqaError("no judged queries to evaluate", where=str(qrels))
    return Benchmark(NAME, [lang], queries, candidates, {lang: lang if lang == UNKNOWN_LANGUAGE else (L.iso639_1(lang) or lang)}, quarantine,
                     {"split": split}, data_dir=str(folder.resolve()))


@register_benchmark(NAME, score=score_miracl, summarize=summarize_miracl, options=("split",))
def load_beir(data_dir=None, **options) -> Benchmark:
    """A BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv): nDCG@10, Recall@100."""
    return load_beir_folder(data_dir, **options)
