"""MIRACL: monolingual passage retrieval in many languages (nDCG@10, Recall@100), from local files.

Layout (as released on the hub, ``miracl/miracl`` + ``miracl/miracl-corpus``)::

    <dir>/**/topics.miracl-v1.0-<lang>-<split>.tsv   qid \\t query
    <dir>/**/qrels.miracl-v1.0-<lang>-<split>.tsv    qid Q0 docid rel
    <dir>/**/miracl-corpus-v1.0-<lang>/*.jsonl[.gz]  {"docid", "title", "text"}
    (or <dir>/**/miracl-v1.0-<lang>/corpus/*.jsonl[.gz])
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterable

from polyqa import languages as langs
from polyqa import paths
from polyqa.evaluate.benchmark import Benchmark, BenchmarkFormatError, Candidate, Query, register_benchmark
from polyqa.evaluate.report import summarize_miracl
from polyqa.evaluate.retrieval import score_miracl

MIRACL_HUB_TOPICS = "miracl/miracl"
MIRACL_HUB_CORPUS = "miracl/miracl-corpus"
DEFAULT_SPLIT = "dev"
# Queries per matrix product at most: a MIRACL corpus holds up to millions of passages.
MAX_CHUNK = 256


def _find_one(root: Path, pattern: str) -> Path | None:
    hits = sorted(root.rglob(pattern))
    return hits[0] if hits else None


def miracl_languages(root: str | Path, split: str = "dev") -> list[str]:
    """File codes of the MIRACL languages that have topics for ``split`` under ``root``."""
    found = []
    for path in sorted(Path(root).rglob(f"topics.miracl-v1.0-*-{split}.tsv")):
        found.append(path.name[len("topics.miracl-v1.0-"): -len(f"-{split}.tsv")])
    return found


def _read_jsonl(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkFormatError(f"{path}: line {line_no}: not valid JSON ({exc})") from exc


def load_miracl(
    root: str | Path,
    languages: Iterable[str] | None = None,
    split: str = "dev",
    max_questions: int | None = None,
) -> Benchmark:
    """Load MIRACL topics, qrels and corpus for some languages from local files.

    Each language is its own monolingual retrieval task; a judged docid missing
    from the corpus and a query with no positive judgement go to the quarantine.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MIRACL folder not found: {root}")
    codes = list(languages) if languages is not None else miracl_languages(root, split)
    if not codes:
        raise FileNotFoundError(f"{root}: no topics.miracl-v1.0-<lang>-{split}.tsv files")
    queries: list[Query] = []
    candidates: list[Candidate] = []
    quarantine: list[dict] = []
    order: list[str] = []
    source_codes: dict[str, str] = {}
    for code in codes:
        code = langs.iso639_1(langs.normalize(code)) or code
        lang = langs.normalize(code)
        order.append(lang)
        source_codes[lang] = code
        topics = _find_one(root, f"topics.miracl-v1.0-{code}-{split}.tsv")
        qrels = _find_one(root, f"qrels.miracl-v1.0-{code}-{split}.tsv")
        if topics is None or qrels is None:
            raise FileNotFoundError(f"{root}: topics or qrels for {code!r} split {split!r} not found")
        corpus_files = [
            p for p in sorted(root.rglob("*.jsonl*"))
            if p.parent.name == f"miracl-corpus-v1.0-{code}"
            or (p.parent.name == "corpus" and p.parent.parent.name == f"miracl-v1.0-{code}")
        ]
        if not corpus_files:
            raise FileNotFoundError(f"{root}: no corpus jsonl for {code!r} (miracl-corpus-v1.0-{code}/*.jsonl[.gz])")
        doc_index: dict[str, int] = {}
        for path in corpus_files:
            for line_no, row in _read_jsonl(path):
                for key in ("docid", "text"):
                    if key not in row:
                        raise BenchmarkFormatError(f"{path}: line {line_no}: missing field {key!r}")
                if row["docid"] in doc_index:
                    quarantine.append({"file": str(path), "row": line_no, "qid": None, "reason": f"duplicate docid {row['docid']}"})
                    continue
                title = str(row.get("title") or "")
                doc_index[row["docid"]] = len(candidates)
                text = f"{title} {row['text']}".strip() if title else str(row["text"])
                candidates.append(Candidate(lang, text, "", title, str(row["docid"])))
        judged: dict[str, dict[int, float]] = {}
        for line_no, line in enumerate(qrels.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 4:
                raise BenchmarkFormatError(f"{qrels}: line {line_no}: expected 'qid Q0 docid rel', got {line!r}")
            qid, _, docid, rel = parts
            try:
                gain = float(rel)
            except ValueError as exc:
                raise BenchmarkFormatError(f"{qrels}: line {line_no}: field 'rel' is not a number: {rel!r}") from exc
            if docid not in doc_index:
                quarantine.append({"file": str(qrels), "row": line_no, "qid": qid, "reason": f"docid {docid} not in corpus"})
                continue
            if gain > 0:
                judged.setdefault(qid, {})[doc_index[docid]] = gain
        n_lang = 0
        for line_no, line in enumerate(topics.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            qid, sep, text = line.partition("\t")
            if not sep:
                raise BenchmarkFormatError(f"{topics}: line {line_no}: expected 'qid<TAB>query', got {line!r}")
            if qid not in judged:
                quarantine.append({"file": str(topics), "row": line_no, "qid": qid, "reason": "no positive qrels"})
                continue
            if max_questions is not None and n_lang >= max_questions:
                break
            rel = judged[qid]
            queries.append(Query(qid, lang, text.strip(), "", tuple(rel), tuple(rel.values())))
            n_lang += 1
    return Benchmark("miracl", order, queries, candidates, source_codes, quarantine, {"split": split})


def _score(benchmark: Benchmark, q_emb, c_emb, *, chunk_size: int = MAX_CHUNK):
    return score_miracl(benchmark, q_emb, c_emb, chunk_size=min(chunk_size, MAX_CHUNK))


@register_benchmark("miracl", score=_score, summarize=summarize_miracl, options=("split",))
def load_miracl_benchmark(data_dir: str | Path | None = None, *, languages: Iterable[str] | None = None,
                          max_questions: int | None = None, split: str | None = None) -> Benchmark:
    """MIRACL: each language searches its own corpus (a local folder in MIRACL's layout)."""
    if data_dir is None:
        raise FileNotFoundError(f"MIRACL needs --data-dir: a local folder with {MIRACL_HUB_TOPICS} topics/qrels "
                                f"and the {MIRACL_HUB_CORPUS} corpus")
    return load_miracl(paths.expand(data_dir), languages, split or DEFAULT_SPLIT, max_questions)
