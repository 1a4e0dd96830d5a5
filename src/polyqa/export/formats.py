"""Writers of the export formats, each with the field names its consumer documents.

A writer takes the examples of one shard at a time (:meth:`add`), so an export holds one shard of
examples in memory, and lists the files it wrote when it finishes. Files are written under a
``.partial`` name and renamed by :meth:`finish`, so a crash never leaves a file that looks whole.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from polyqa.export.examples import Document, Example

PARTIAL = ".partial"


class _Files:
    """Files opened lazily under a .partial name, renamed into place on close."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.open: dict[str, IO[str]] = {}

    def jsonl(self, relative: str) -> IO[str]:
        if relative not in self.open:
            path = self.root / (relative + PARTIAL)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.open[relative] = open(path, "w", encoding="utf-8")
        return self.open[relative]

    def write(self, relative: str, row: dict[str, Any]) -> None:
        self.jsonl(relative).write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> list[str]:
        for relative, fh in self.open.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self.root / (relative + PARTIAL), self.root / relative)
        return sorted(self.open)


class SentenceTransformersWriter:
    """``sentence-transformers/<x>-<y>/train.parquet``: ``anchor``, ``positive``, ``negative_1`` ... ``negative_k``;
    one dataset config per language pair (listed in the card's front matter)."""

    subdir = "sentence-transformers"

    def __init__(self, root: Path, num_negatives: int, **_: Any) -> None:
        self.root = root / self.subdir
        self.columns = ["anchor", "positive"] + [f"negative_{i}" for i in range(1, num_negatives + 1)]
        self.schema = pa.schema([(c, pa.string()) for c in self.columns])
        self.writers: dict[str, pq.ParquetWriter] = {}

    def add(self, examples: list[Example]) -> None:
        by_pair: dict[str, list[Example]] = {}
        for e in examples:
            by_pair.setdefault(f"{e.query_lang}-{e.positive_lang}", []).append(e)
        for pair, group in by_pair.items():
            if pair not in self.writers:
                path = self.root / pair / ("train.parquet" + PARTIAL)
                path.parent.mkdir(parents=True, exist_ok=True)
                self.writers[pair] = pq.ParquetWriter(path, self.schema)
            data = {"anchor": [e.query for e in group], "positive": [e.positive.text for e in group]}
            for i, column in enumerate(self.columns[2:]):
                data[column] = [e.negatives[i].text for e in group]
            self.writers[pair].write_table(pa.table(data, schema=self.schema))

    def finish(self) -> list[str]:
        for pair, writer in self.writers.items():
            writer.close()
            os.replace(self.root / pair / ("train.parquet" + PARTIAL), self.root / pair / "train.parquet")
        return [f"{self.subdir}/{pair}/train.parquet" for pair in sorted(self.writers)]

    @property
    def configs(self) -> list[dict[str, Any]]:
        return [{"config_name": pair, "data_files": [{"split": "train", "path": f"{self.subdir}/{pair}/train.parquet"}]}
                for pair in sorted(self.writers)]


class FlagEmbeddingWriter:
    """``flagembedding/<x>-<y>.jsonl``: ``{"query", "pos": [..], "neg": [..]}``, plus ``pos_scores`` /
    ``neg_scores`` when the miner's scores are kept and ``prompt`` when a query prompt is set."""

    subdir = "flagembedding"

    def __init__(self, root: Path, keep_scores: bool = False, query_prompt: str | None = None, **_: Any) -> None:
        self.files = _Files(root / self.subdir)
        self.keep_scores, self.prompt = keep_scores, query_prompt

    def add(self, examples: list[Example]) -> None:
        for e in examples:
            row: dict[str, Any] = {"query": e.query, "pos": [e.positive.text], "neg": [n.text for n in e.negatives]}
            if self.keep_scores:
                row["pos_scores"] = [e.positive_score]
                row["neg_scores"] = list(e.negative_scores)
            if self.prompt:
                row["prompt"] = self.prompt
            self.files.write(f"{e.query_lang}-{e.positive_lang}.jsonl", row)

    def finish(self) -> list[str]:
        return [f"{self.subdir}/{name}" for name in self.files.close()]


def _tevatron_passage(doc: Document) -> dict[str, str]:
    return {"docid": doc.id, "title": doc.title, "text": doc.text}


class TevatronWriter:
    """``tevatron/<x>-<y>/train.jsonl``: ``{"query_id", "query", "positive_passages", "negative_passages"}``
    (each passage ``{"docid", "title", "text"}``), and ``tevatron/corpus.jsonl`` of every document named."""

    subdir = "tevatron"

    def __init__(self, root: Path, **_: Any) -> None:
        self.files = _Files(root / self.subdir)
        self.seen: set[str] = set()

    def _document(self, doc: Document) -> None:
        if doc.id not in self.seen:
            self.seen.add(doc.id)
            self.files.write("corpus.jsonl", _tevatron_passage(doc))

    def add(self, examples: list[Example]) -> None:
        for e in examples:
            for doc in (e.positive, *e.negatives):
                self._document(doc)
            self.files.write(f"{e.query_lang}-{e.positive_lang}/train.jsonl", {
                "query_id": e.query_id, "query": e.query,
                "positive_passages": [_tevatron_passage(e.positive)],
                "negative_passages": [_tevatron_passage(n) for n in e.negatives]})

    def finish(self) -> list[str]:
        return [f"{self.subdir}/{name}" for name in self.files.close()]


class BeirWriter:
    """Per language ``beir/<lang>/{corpus.jsonl, queries.jsonl, qrels/test.tsv}`` (queries and documents of one
    language), and per query language ``beir/cross-<lang>/`` (those queries against the documents of every
    language, relevant in each: LAReQA's setting). The documents are every passage (or sentence) of the
    exported articles; the queries are their questions with a positive."""

    subdir = "beir"

    def __init__(self, root: Path, languages: list[str], cross: bool = True, **_: Any) -> None:
        self.root = root / self.subdir
        self.files = _Files(self.root)
        self.languages = languages
        self.cross = cross and len(languages) > 1
        self.seen: set[str] = set()

    def add_documents(self, lang: str, docs: Iterable[Document]) -> None:
        for doc in docs:
            if doc.id in self.seen:
                continue
            self.seen.add(doc.id)
            row = {"_id": doc.id, "title": doc.title, "text": doc.text}
            self.files.write(f"{lang}/corpus.jsonl", row)
            if self.cross:
                self.files.write("all-languages-corpus.jsonl", row)

    def add_query(self, lang: str, qa_id: str, question: str, relevant: dict[str, str]) -> None:
        """``relevant``: positive language -> docid of the question's positive in it."""
        if lang in relevant:
            self._query(lang, qa_id, question, [relevant[lang]])
        if self.cross:
            self._query(f"cross-{lang}", qa_id, question, list(relevant.values()))

    def _query(self, folder: str, qa_id: str, question: str, docids: list[str]) -> None:
        self.files.write(f"{folder}/queries.jsonl", {"_id": qa_id, "text": question})
        qrels = self.files.jsonl(f"{folder}/qrels/test.tsv")
        if qrels.tell() == 0:
            qrels.write("query-id\tcorpus-id\tscore\n")
        for d in docids:
            qrels.write(f"{qa_id}\t{d}\t1\n")

    def finish(self) -> list[str]:
        written = self.files.close()
        if self.cross:
            shared = self.root / "all-languages-corpus.jsonl"
            for lang in self.languages:
                folder = self.root / f"cross-{lang}"
                if not folder.is_dir():
                    continue
                target = folder / "corpus.jsonl"
                target.unlink(missing_ok=True)  # an earlier export's link (the export folder is polyqa's)
                try:  # one file on disk, seen in each cross folder as BEIR expects it
                    os.link(shared, target)
                except OSError:
                    shutil.copyfile(shared, target)
                written.append(f"cross-{lang}/corpus.jsonl")
            shared.unlink()
            written.remove("all-languages-corpus.jsonl")
        return [f"{self.subdir}/{name}" for name in sorted(written)]


WRITERS = {"sentence-transformers": SentenceTransformersWriter, "flagembedding": FlagEmbeddingWriter,
           "tevatron": TevatronWriter, "beir": BeirWriter}
