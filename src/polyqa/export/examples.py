"""Training examples from an aligned corpus, shard by shard: (query in x, positive in y, negatives in y).

Row ``i`` of every language holds the same qa_id, so an example of the pair ``(x, y)`` is the
question of row ``i`` in ``x`` with its positive (the passage, or the answer sentence) in ``y``.
A row is left out of its language, and counted with the reason, when its quality_pass is false
(with the quality filter on), when it has no positive (a sentence positive needs an answer
sentence), or when its article is held out. With mined negatives, an example takes the negatives
mined for the positive's row in ``y``, given in ``y``; one with fewer than asked for is left out.

Documents are named ``<lang>/<passage_id>`` (passages) or ``<lang>/<passage_id>/<sentence>``
(sentences), as the ``polyqa-corpus`` benchmark names its candidates.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute  # noqa: F401 (pa.compute)

from polyqa.batching.pairs import SKIP_HELD_OUT, SKIP_NULL_POSITIVE, SKIP_QUALITY
from polyqa.corpus import reader

SKIP_FEW_NEGATIVES = "fewer_mined_negatives"
COLUMNS = ["qa_id", "passage_id", "title", "question", "passage", "sentences", "answer_text", "answer_sentence",
           "quality_pass"]


def language_pairs(languages: Sequence[str], pairs: str) -> list[tuple[str, str]]:
    """(query language, positive language) pairs: ``x-x``, ``x-y`` or ``all``."""
    return [(x, y) for x in languages for y in languages
            if pairs == "all" or (pairs == "x-x") == (x == y)]


def docid(lang: str, passage_id: str, sentence: int | None = None) -> str:
    return f"{lang}/{passage_id}" if sentence is None else f"{lang}/{passage_id}/{sentence}"


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Example:
    qa_id: str
    query_id: str  # <query lang>/<qa_id>
    query_lang: str
    positive_lang: str
    query: str
    positive: Document
    positive_score: float | None = None
    negatives: tuple[Document, ...] = ()
    negative_scores: tuple[float, ...] = ()


@dataclass
class Selection:
    """Which rows become examples, and the count of those left out (per language, per reason)."""

    languages: list[str]
    pairs: list[tuple[str, str]]
    positive: str = "passage"
    quality_filter: bool = True
    heldout: frozenset[str] = frozenset()
    num_negatives: int = 0  # 0: no mined negatives
    left_out: dict[str, Counter] = field(default_factory=dict)  # lang -> reason -> rows
    left_out_pairs: dict[str, Counter] = field(default_factory=dict)  # "x-y" -> reason -> examples
    examples: Counter = field(default_factory=Counter)  # "x-y" -> examples

    def row_reason(self, row: dict) -> str | None:
        if row["title"] in self.heldout:
            return SKIP_HELD_OUT
        if self.quality_filter and not row["quality_pass"]:
            return SKIP_QUALITY
        if self.positive == "sentence" and not _has_sentence(row):
            return SKIP_NULL_POSITIVE
        return None


def _has_sentence(row: dict) -> bool:
    index = row["answer_sentence"]
    return index is not None and 0 <= index < len(row["sentences"] or [])


def positive_document(row: dict, lang: str, positive: str) -> Document:
    title = row["title"] or ""
    if positive == "passage":
        return Document(docid(lang, row["passage_id"]), title, row["passage"])
    index = row["answer_sentence"]
    return Document(docid(lang, row["passage_id"], index), title, row["sentences"][index])


def documents(row: dict, lang: str, positive: str) -> list[Document]:
    """The documents a row's passage gives: the passage, or each of its sentences."""
    title = row["title"] or ""
    if positive == "passage":
        return [Document(docid(lang, row["passage_id"]), title, row["passage"])]
    return [Document(docid(lang, row["passage_id"], i), title, s) for i, s in enumerate(row["sentences"] or [])]


class NegativeTexts:
    """The texts of mined negatives, by (language, passage id), only for the passages some row names.

    Kept in a temporary SQLite file rather than in memory: negatives point anywhere in the corpus,
    and an export holds one shard at a time whatever the corpus' size.
    """

    def __init__(self, corpus, languages: Sequence[str], tables: dict[str, pa.Table]) -> None:
        import sqlite3
        import tempfile

        self._folder = tempfile.TemporaryDirectory(prefix="polyqa-export-")
        self.db = sqlite3.connect(f"{self._folder.name}/texts.sqlite")
        self.db.execute("CREATE TABLE texts (lang TEXT, pid TEXT, title TEXT, passage TEXT, sentences TEXT, "
                        "PRIMARY KEY (lang, pid))")
        for lang in languages:
            wanted = set(pa.compute.list_flatten(tables[lang].column("negative_passage_ids")).to_pylist())
            for path in reader.shard_paths(corpus, lang):
                table = reader.shard_dataset([path]).to_table(columns=["passage_id", "title", "passage", "sentences"])
                self.db.executemany(
                    "INSERT OR IGNORE INTO texts VALUES (?, ?, ?, ?, ?)",
                    ((lang, pid, title or "", passage, json.dumps(sentences or [], ensure_ascii=False))
                     for pid, title, passage, sentences in zip(*(table.column(c).to_pylist()
                                                                 for c in table.column_names))
                     if pid in wanted))
        self.db.commit()

    def document(self, lang: str, passage_id: str, sentence: int | None) -> Document:
        title, passage, sentences = self.db.execute(
            "SELECT title, passage, sentences FROM texts WHERE lang = ? AND pid = ?", (lang, passage_id)).fetchone()
        return Document(docid(lang, passage_id, sentence), title,
                        passage if sentence is None else json.loads(sentences)[sentence])

    def close(self) -> None:
        self.db.close()
        self._folder.cleanup()


def iter_examples(corpus, selection: Selection, negatives: dict[str, pa.Table] | None = None,
                  texts: NegativeTexts | None = None) -> Iterator[list[Example]]:
    """The examples of each aligned shard in turn (the left-out counts grow in ``selection``)."""
    langs = selection.languages
    offset = 0
    for shard in reader.iter_parallel(corpus, langs, COLUMNS):
        rows = {lang: shard[lang].to_pylist() for lang in langs}
        n = len(next(iter(rows.values())))
        mined = {lang: negatives[lang].slice(offset, n).to_pylist() for lang in langs} if negatives else None
        offset += n
        batch: list[Example] = []
        for i in range(n):
            usable = {}
            for lang in langs:
                reason = selection.row_reason(rows[lang][i])
                if reason:
                    selection.left_out.setdefault(lang, Counter())[reason] += 1
                usable[lang] = reason is None
            for x, y in selection.pairs:
                if not (usable[x] and usable[y]):
                    continue
                pair = f"{x}-{y}"
                query_row, positive_row = rows[x][i], rows[y][i]
                negs: tuple[Document, ...] = ()
                scores: tuple[float, ...] = ()
                positive_score = None
                if mined is not None:
                    m = mined[y][i]
                    if m["qa_id"] != positive_row["qa_id"]:
                        raise ValueError(f"negatives of {y} are not aligned with the corpus at {m['qa_id']!r}")
                    if len(m["negative_passage_ids"]) < selection.num_negatives:
                        selection.left_out_pairs.setdefault(pair, Counter())[SKIP_FEW_NEGATIVES] += 1
                        continue
                    keep = slice(0, selection.num_negatives)
                    negs = tuple(texts.document(y, p, s) for p, s in
                                 zip(m["negative_passage_ids"][keep], m["negative_sentences"][keep]))
                    scores = tuple(m["negative_scores"][keep])
                    positive_score = m["positive_score"]
                selection.examples[pair] += 1
                batch.append(Example(query_row["qa_id"], f"{x}/{query_row['qa_id']}", x, y, query_row["question"],
                                     positive_document(positive_row, y, selection.positive), positive_score,
                                     negs, scores))
        yield batch
