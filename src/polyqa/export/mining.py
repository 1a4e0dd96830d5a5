"""Hard negatives mined per language, stored by id so that one negative can be given in any language.

For each language, every candidate (a passage, or each sentence of a passage) is encoded once and
put in a faiss inner-product index of normalized embeddings (cosine similarity); each row's
question is then searched in its own language. A candidate becomes a negative of the row when

- it is not the positive itself (by id: the passage, or the answer sentence of the passage), so it
  is never a translation of the positive either: translations share the positive's id;
- its text is not the positive's text (the same paragraph repeated under another id);
- it does not contain the row's answer text (case-folded);
- its rank, among the candidates other than the positive, lies in ``(range_min, range_max]``
  (FlagEmbedding's ``range_for_sampling``, sentence-transformers' ``range_min``/``range_max``);
- its score is at most ``(1 - relative_margin) x`` the positive's and at most ``max_score``
  (sentence-transformers' ``relative_margin`` / ``max_score``).

Of those, ``num_negatives`` are kept: the best-scoring (``sampling: top``) or a seeded random pick.

A row's negatives are written in corpus terms, ``(passage_id, sentence index or null)`` with the
score, in ``<folder>/lang=<code>.arrow``: one row per corpus row, in the corpus' own order, so
shard k of the corpus is a slice of it. ``negatives.json`` describes the miner, its settings, the
corpus (its manifest's sha256) and each file's sha256; a rerun with the same settings and corpus
reuses what is there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from polyqa import languages as L
from polyqa import locking, storage
from polyqa.corpus import reader
from polyqa.corpus.writer import sha256_file
from polyqa.errors import PolyqaError

log = logging.getLogger(__name__)

DESCRIPTION_FILE = "negatives.json"
KIND = "polyqa-negatives"
NEGATIVES_SCHEMA = pa.schema([
    ("qa_id", pa.string()),
    ("positive_score", pa.float32()),  # null: the row has no positive (no answer sentence)
    ("negative_passage_ids", pa.list_(pa.string())),
    ("negative_sentences", pa.list_(pa.int32())),  # sentence index per negative; null entries for passages
    ("negative_scores", pa.list_(pa.float32())),
])
ENCODE_CHUNK = 1024  # texts per encode call: bounds memory, gives progress


@dataclass(frozen=True)
class MinerSettings:
    """How negatives are mined; the defaults suit corpora of a few hundred passages and up."""

    model: str
    positive: str = "passage"  # passage | sentence: what a candidate is
    num_negatives: int = 3
    range_min: int = 0
    range_max: int = 50
    relative_margin: float | None = 0.05
    max_score: float | None = None
    sampling: str = "top"  # top | random
    seed: int = 0
    query_prompt: str = ""
    passage_prompt: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def manifest_sha256(corpus: str | Path) -> str:
    """The corpus' identity for exports and negatives: the sha256 of its manifest.json."""
    return sha256_file(storage.as_path(corpus) / "manifest.json")


@dataclass
class MinedNegatives:
    """A folder of mined negatives: its description and per-language files."""

    folder: Path
    description: dict[str, Any]

    @property
    def settings(self) -> dict[str, Any]:
        return self.description["settings"]

    @property
    def languages(self) -> list[str]:
        return sorted(self.description["files"])

    @classmethod
    def load(cls, folder: str | Path) -> MinedNegatives:
        folder = Path(folder)
        path = folder / DESCRIPTION_FILE
        try:
            description = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise PolyqaError("no mined negatives here (no negatives.json)", where=str(folder),
                              todo="pass a folder written by polyqa mine-negatives") from None
        except ValueError as exc:
            raise PolyqaError(f"negatives.json is damaged ({exc})", where=str(path),
                              todo="mine again into a new folder") from None
        if description.get("kind") != KIND:
            raise PolyqaError("not a polyqa negatives description", where=str(path))
        return cls(folder, description)

    def verify(self, corpus_sha256: str | None = None, languages: Sequence[str] = ()) -> str | None:
        """None when the files are whole and fit the corpus, else what is wrong."""
        if corpus_sha256 is not None and self.description["corpus_manifest_sha256"] != corpus_sha256:
            return "they were mined from another version of the corpus (manifest sha256 differs)"
        missing = [lang for lang in languages if lang not in self.description["files"]]
        if missing:
            return f"no negatives mined for {', '.join(missing)}"
        for lang, entry in self.description["files"].items():
            path = self.folder / entry["file"]
            if not path.is_file():
                return f"{path} is missing"
            if sha256_file(path) != entry["sha256"]:
                return f"{path} does not match its sha256 in {DESCRIPTION_FILE}"
        return None

    def table(self, lang: str) -> pa.Table:
        entry = self.description["files"][lang]
        with pa.memory_map(str(self.folder / entry["file"])) as source:
            return ipc.open_file(source).read_all()


def _candidates(corpus: Path, lang: str, positive: str) -> tuple[list[str], list[int | None], list[str]]:
    """Every candidate of one language once, in corpus order: (passage ids, sentence index, text)."""
    pids: list[str] = []
    sentences: list[int | None] = []
    texts: list[str] = []
    seen: set[str] = set()
    for path in reader.shard_paths(corpus, lang):
        table = reader.shard_dataset([path]).to_table(columns=["passage_id", "passage", "sentences"])
        for pid, passage, sents in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            if pid in seen:
                continue
            seen.add(pid)
            if positive == "passage":
                pids.append(pid)
                sentences.append(None)
                texts.append(passage)
            else:
                for i, sentence in enumerate(sents or []):
                    pids.append(pid)
                    sentences.append(i)
                    texts.append(sentence)
    return pids, sentences, texts


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass
class LanguageMining:
    """Statistics of one language's mining."""

    candidates: int = 0
    queries: int = 0
    encode_seconds: float = 0.0
    candidate_seconds: float = 0.0  # of encode_seconds: the candidates (passages or sentences)
    search_seconds: float = 0.0
    without_positive: int = 0
    short: int = 0  # rows that got fewer than num_negatives
    filtered: dict[str, int] = field(default_factory=dict)  # candidates dropped, per filter


def _select(settings: MinerSettings, hits: np.ndarray, scores: np.ndarray, positive: int, positive_score: float,
            texts: list[str], answer: str, rng: random.Random, stats: LanguageMining) -> list[tuple[int, float]]:
    """The negatives of one query from its ranked hits (candidate indices, best first)."""
    ranked = [(int(c), float(s)) for c, s in zip(hits, scores) if c >= 0 and c != positive]
    window = ranked[settings.range_min:settings.range_max]
    folded = answer.casefold().strip()
    positive_text = texts[positive]
    ceiling = positive_score * (1 - settings.relative_margin) if settings.relative_margin is not None else None
    kept = []
    for c, s in window:
        reason = None
        if texts[c] == positive_text:
            reason = "same_text_as_positive"
        elif folded and folded in texts[c].casefold():
            reason = "contains_answer"
        elif ceiling is not None and s > ceiling:
            reason = "within_margin_of_positive"
        elif settings.max_score is not None and s > settings.max_score:
            reason = "above_max_score"
        if reason:
            stats.filtered[reason] = stats.filtered.get(reason, 0) + 1
        else:
            kept.append((c, s))
    if settings.sampling == "random" and len(kept) > settings.num_negatives:
        kept = sorted(rng.sample(kept, settings.num_negatives), key=lambda cs: -cs[1])
    return kept[:settings.num_negatives]


def mine_language(corpus: Path, lang: str, settings: MinerSettings, model, batch_size: int,
                  progress: Callable[[str], None] = log.info) -> tuple[pa.Table, LanguageMining]:
    """The negatives of every row of one language (see the module docstring)."""
    import faiss

    stats = LanguageMining()
    pids, sent_index, texts = _candidates(corpus, lang, settings.positive)
    stats.candidates = len(texts)
    if not texts:
        raise PolyqaError(f"no candidates to mine from in {lang}", where=str(corpus))
    position = {(p, s): i for i, (p, s) in enumerate(zip(pids, sent_index))}
    index = None
    started = time.perf_counter()
    for chunk in _chunks(texts, ENCODE_CHUNK):
        emb = model.encode(list(chunk), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           prompt=settings.passage_prompt or None, show_progress_bar=False).astype(np.float32)
        if index is None:
            index = faiss.IndexFlatIP(emb.shape[1])
        index.add(emb)
        progress(f"{lang}: encoded {index.ntotal}/{len(texts)} candidates")
    stats.encode_seconds = stats.candidate_seconds = time.perf_counter() - started
    k = min(len(texts), settings.range_max + 1)
    columns: dict[str, list] = {name: [] for name in NEGATIVES_SCHEMA.names}
    for path in reader.shard_paths(corpus, lang):
        table = reader.shard_dataset([path]).to_table(
            columns=["qa_id", "passage_id", "question", "answer_text", "answer_sentence"])
        rows = table.to_pylist()
        started = time.perf_counter()
        q_emb = model.encode([r["question"] for r in rows], batch_size=batch_size, normalize_embeddings=True,
                             convert_to_numpy=True, prompt=settings.query_prompt or None,
                             show_progress_bar=False).astype(np.float32)
        stats.encode_seconds += time.perf_counter() - started
        started = time.perf_counter()
        scores, hits = index.search(q_emb, k)
        stats.search_seconds += time.perf_counter() - started
        for r, row in enumerate(rows):
            stats.queries += 1
            key = (row["passage_id"], None if settings.positive == "passage" else row["answer_sentence"])
            positive = position.get(key)
            chosen: list[tuple[int, float]] = []
            positive_score = None
            if positive is None:  # a sentence positive needs the answer sentence
                stats.without_positive += 1
            else:
                positive_score = float(q_emb[r] @ index.reconstruct(positive))
                rng = random.Random(f"{settings.seed}/{lang}/{row['qa_id']}")
                chosen = _select(settings, hits[r], scores[r], positive, positive_score, texts,
                                 row["answer_text"] or "", rng, stats)
                if len(chosen) < settings.num_negatives:
                    stats.short += 1
            columns["qa_id"].append(row["qa_id"])
            columns["positive_score"].append(positive_score)
            columns["negative_passage_ids"].append([pids[c] for c, _ in chosen])
            columns["negative_sentences"].append([sent_index[c] for c, _ in chosen])
            columns["negative_scores"].append([s for _, s in chosen])
        progress(f"{lang}: mined {stats.queries} questions")
    return pa.table(columns, schema=NEGATIVES_SCHEMA), stats


def _write_table(path: Path, table: pa.Table) -> str:
    """Write ``table`` as Arrow IPC atomically; its sha256."""
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data = sink.getvalue().to_pybytes()
    storage.atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def _check_folder(folder: Path) -> None:
    """Refuse a folder that holds anything but polyqa's negatives (never overwrite a user's files)."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise PolyqaError("a file where the negatives folder is expected", where=str(folder),
                          todo="pass a new folder as --output")
    ours = (folder / DESCRIPTION_FILE).is_file()
    others = [p.name for p in folder.iterdir()
              if not locking.is_lock_name(p.name) and p.name != DESCRIPTION_FILE
              and not (p.name.startswith("lang=") and p.suffix == ".arrow")]
    if others or (not ours and any(p.suffix == ".arrow" for p in folder.iterdir())):
        raise PolyqaError(f"the folder holds files polyqa did not write ({', '.join(sorted(others)[:3]) or 'shards'})",
                          where=str(folder), todo="pass a new or empty folder as --output")


def mine_negatives(corpus: str | Path, output: str | Path, settings: MinerSettings, *,
                   languages: Sequence[str] | None = None, batch_size: int = 64, device: str | None = None,
                   progress: Callable[[str], None] = log.info) -> MinedNegatives:
    """Mine (or reuse) the negatives of ``languages`` of ``corpus`` into ``output``."""
    from polyqa.encoders import load_sentence_transformer

    folder = Path(reader.require_corpus(corpus, manifest=True))
    output = Path(output)
    langs = L.normalize_many(list(languages)) if languages else reader.corpus_languages(folder)
    corpus_sha = manifest_sha256(folder)
    _check_folder(output)
    output.mkdir(parents=True, exist_ok=True)
    with locking.output_lock(output, "polyqa mine-negatives"):
        if (output / DESCRIPTION_FILE).is_file():
            earlier = MinedNegatives.load(output)
            if earlier.settings == settings.as_dict() and earlier.verify(corpus_sha, langs) is None:
                progress(f"negatives in {output} are up to date (same corpus, settings and files): reused")
                return earlier
            (output / DESCRIPTION_FILE).unlink()  # what follows replaces polyqa's own earlier files
        model = load_sentence_transformer(settings.model, device=device)
        files: dict[str, Any] = {}
        per_language: dict[str, Any] = {}
        for lang in langs:
            table, stats = mine_language(folder, lang, settings, model, batch_size, progress)
            name = f"lang={lang}.arrow"
            files[lang] = {"file": name, "sha256": _write_table(output / name, table), "rows": table.num_rows}
            per_language[lang] = asdict(stats)
        encoded = sum(s["candidates"] + s["queries"] for s in per_language.values())
        seconds = sum(s["encode_seconds"] for s in per_language.values())
        candidates = sum(s["candidates"] for s in per_language.values())
        candidate_seconds = sum(s["candidate_seconds"] for s in per_language.values())
        description = {
            "kind": KIND,
            "corpus": str(folder.resolve()),
            "corpus_manifest_sha256": corpus_sha,
            "miner": {"model": settings.model, "search": "faiss.IndexFlatIP over normalized embeddings (cosine)",
                      "embedding_dimension": getattr(model, "get_embedding_dimension", None) and model.get_embedding_dimension()},
            "settings": settings.as_dict(),
            "files": files,
            "languages": per_language,
            "texts_encoded": encoded,
            "texts_encoded_per_second": round(encoded / seconds, 1) if seconds else None,
            "passages_encoded_per_second": round(candidates / candidate_seconds, 1) if candidate_seconds else None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        storage.atomic_write_text(output / DESCRIPTION_FILE, json.dumps(description, indent=2, ensure_ascii=False)
                                  + "\n")
        progress(f"mined negatives for {len(langs)} language(s) into {output}: "
                 f"{description['passages_encoded_per_second']} {settings.positive}s encoded per second")
        return MinedNegatives(output, description)
