"""MIRACL: monolingual passage retrieval in many languages (nDCG@10, Recall@100), from local files.

Layout (as released on the hub, ``miracl/miracl`` + ``miracl/miracl-corpus``)::

    <dir>/**/topics.miracl-v1.0-<lang>-<split>.tsv   qid \\t query
    <dir>/**/qrels.miracl-v1.0-<lang>-<split>.tsv    qid Q0 docid rel
    <dir>/**/miracl-corpus-v1.0-<lang>/*.jsonl[.gz]  {"docid", "title", "text"}
    (or <dir>/**/miracl-v1.0-<lang>/corpus/*.jsonl[.gz])

A MIRACL corpus is far larger than memory (English alone: 32.9M passages), so
only the judged passages (those with a positive qrel) are held as the
benchmark's candidates; every other passage stays on disk as a
:class:`PassageStream` that scoring reads, encodes and scores in chunks, keeping
per query only its top scores and, per relevant passage, how many passages score
at least as high (see ``retrieval.score_miracl``). Loading reads each corpus
once to find the judged passages, count the others and find repeated docids.
"""

from __future__ import annotations

import gzip
import json
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from polyqa import languages as langs
from polyqa import paths
from polyqa.evaluate.benchmark import Benchmark, BenchmarkFormatError, Candidate, Query, register_benchmark
from polyqa.evaluate.result import summarize_miracl
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


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkFormatError(f"{path}: line {line_no}: not valid JSON ({exc})") from exc
            for key in ("docid", "text"):
                if key not in row:
                    raise BenchmarkFormatError(f"{path}: line {line_no}: missing field {key!r}")
            yield line_no, row


def _passage_text(row: dict) -> str:
    title = str(row.get("title") or "")
    return f"{title} {row['text']}".strip() if title else str(row["text"])


@dataclass(frozen=True)
class PassageStream:
    """One language's passages that are not held in memory: every corpus row except the judged
    passages (held as candidates) and repeats of a docid (quarantined), read again in chunks."""

    language: str  # NLLB code
    files: tuple[Path, ...]
    passages: int  # how many texts :meth:`chunks` yields
    held: frozenset[str] = frozenset()  # docids held as candidates
    skipped: frozenset[tuple[int, int]] = frozenset()  # (file index, line) of repeats

    def chunks(self, size: int) -> Iterator[list[str]]:
        """The passages' texts ("title text"), ``size`` at a time, in file order."""
        chunk: list[str] = []
        for index, path in enumerate(self.files):
            for line_no, row in _read_jsonl(path):
                if (index, line_no) in self.skipped or str(row["docid"]) in self.held:
                    continue
                chunk.append(_passage_text(row))
                if len(chunk) == size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


def _corpus_files(root: Path, code: str) -> list[Path]:
    return [
        p for p in sorted(root.rglob("*.jsonl*"))
        if p.parent.name == f"miracl-corpus-v1.0-{code}"
        or (p.parent.name == "corpus" and p.parent.parent.name == f"miracl-v1.0-{code}")
    ]


def _read_qrels(qrels: Path) -> list[tuple[int, str, str, float]]:
    """``(line, qid, docid, gain)`` of every judgement."""
    rows = []
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
        rows.append((line_no, qid, docid, gain))
    return rows


def _scan_corpus(files: list[Path], lang: str, judged: set[str], candidates: list[Candidate],
                 quarantine: list[dict]) -> PassageStream:
    """One pass over a language's corpus: judged passages become candidates (first occurrence of a
    docid), the others are counted; a docid's repeats are quarantined and skipped by the stream."""
    held: dict[str, int] = {}
    hashes = array("q")  # hash(docid) of every row: 8 bytes per passage, not a set of 33M strings
    rows = held_rows = 0
    for path in files:
        for _, row in _read_jsonl(path):
            docid = str(row["docid"])
            hashes.append(hash(docid))
            rows += 1
            if docid in judged:
                held_rows += 1
                if docid not in held:
                    held[docid] = len(candidates)
                    candidates.append(Candidate(lang, _passage_text(row), "", str(row.get("title") or ""), docid))
    values, counts = np.unique(np.frombuffer(hashes, dtype=np.int64), return_counts=True)
    repeated = set(values[counts > 1].tolist())
    del hashes, values, counts
    skipped: set[tuple[int, int]] = set()
    skipped_unheld = 0
    if repeated:  # rare: read again to name each repeat (equal hashes need not be equal docids)
        seen: set[str] = set()
        for index, path in enumerate(files):
            for line_no, row in _read_jsonl(path):
                docid = str(row["docid"])
                if hash(docid) not in repeated:
                    continue
                if docid in seen:
                    skipped.add((index, line_no))
                    skipped_unheld += docid not in held
                    quarantine.append({"file": str(path), "row": line_no, "qid": None,
                                       "reason": f"duplicate docid {docid}"})
                seen.add(docid)
    return PassageStream(lang, tuple(files), rows - held_rows - skipped_unheld, frozenset(held), frozenset(skipped))


def load_miracl(
    root: str | Path,
    languages: Iterable[str] | None = None,
    split: str = "dev",
    max_questions: int | None = None,
) -> Benchmark:
    """Load MIRACL topics and qrels for some languages from local files, and index their corpora.

    Each language is its own monolingual retrieval task. The judged passages are the
    benchmark's candidates; the rest of each corpus is in ``benchmark.streamed``. A judged
    docid missing from the corpus, a repeated docid and a query with no positive judgement
    go to the quarantine.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MIRACL folder not found: {root}")
    codes = list(languages) if languages is not None else miracl_languages(root, split)
    if not codes:
        raise FileNotFoundError(f"{root}: no topics.miracl-v1.0-<lang>-{split}.tsv files")
    queries: list[Query] = []
    candidates: list[Candidate] = []
    streamed: dict[str, PassageStream] = {}
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
        corpus_files = _corpus_files(root, code)
        if not corpus_files:
            raise FileNotFoundError(f"{root}: no corpus jsonl for {code!r} (miracl-corpus-v1.0-{code}/*.jsonl[.gz])")
        judgements = _read_qrels(qrels)
        first = len(candidates)
        stream = _scan_corpus(corpus_files, lang, {docid for _, _, docid, gain in judgements if gain > 0},
                              candidates, quarantine)
        streamed[lang] = stream
        doc_index = {c.key: first + i for i, c in enumerate(candidates[first:])}
        judged: dict[str, dict[int, float]] = {}
        for line_no, qid, docid, gain in judgements:
            if gain <= 0:  # judged not relevant: an ordinary passage of the corpus
                continue
            if docid not in doc_index:
                quarantine.append({"file": str(qrels), "row": line_no, "qid": qid, "reason": f"docid {docid} not in corpus"})
                continue
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
    return Benchmark("miracl", order, queries, candidates, source_codes, quarantine, {"split": split},
                     streamed=streamed)


def _score(benchmark: Benchmark, q_emb, c_emb, *, chunk_size: int = MAX_CHUNK, encode=None):
    return score_miracl(benchmark, q_emb, c_emb, chunk_size=min(chunk_size, MAX_CHUNK), encode=encode)


@register_benchmark("miracl", score=_score, summarize=summarize_miracl, options=("split",), title="MIRACL")
def load_miracl_benchmark(data_dir: str | Path | None = None, *, languages: Iterable[str] | None = None,
                          max_questions: int | None = None, split: str | None = None) -> Benchmark:
    """MIRACL: each language searches its own corpus (a local folder in MIRACL's layout)."""
    if data_dir is None:
        raise FileNotFoundError(f"MIRACL needs --data-dir: a local folder with {MIRACL_HUB_TOPICS} topics/qrels "
                                f"and the {MIRACL_HUB_CORPUS} corpus")
    return load_miracl(paths.expand(data_dir), languages, split or DEFAULT_SPLIT, max_questions)
