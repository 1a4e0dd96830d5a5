"""Training pairs from an aligned corpus: the texts of every training language and which rows are usable.

Row ``i`` of every language holds the same qa_id (the corpus is aligned). A
*pair* is ``(i, a, b)``: the question of row ``i`` in language ``a`` with its
positive (the passage, or the answer sentence) in language ``b``.

Rows whose ``quality_pass`` is false, or whose positive is null (unprojected
answer sentence), are not usable in their language; they are counted in
``TrainingPairs.skipped``, listed by ``TrainingPairs.skipped_table()`` (shard
file, row, field, reason: the quarantine schema) and never drawn.

Needs only numpy and pyarrow (no torch).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from polyqa import languages as L
from polyqa.batching.planner import Separation
from polyqa.corpus import reader

POSITIVE_KINDS = ("passage", "sentence")
POSITIVE_FIELD = {"passage": "passage", "sentence": "answer_sentence"}

# Reasons a (qa_id, language) row is not used for training.
SKIP_QUALITY = "quality_pass_false"
SKIP_NULL_POSITIVE = "null_positive"
SKIP_NO_HARD_NEGATIVE = "no_hard_negative"
SKIP_HELD_OUT = "held_out_article"  # the row's title is held out for evaluation

# hard_negatives value: the negatives polyqa mine-negatives found, in place of the neighbouring text.
MINED = "mined"


@dataclass
class TrainingPairs:
    """Aligned texts of the training languages, and which rows are usable.

    ``questions[k][i]`` / ``positives[k][i]`` are row ``i`` in ``languages[k]``;
    ``usable[i, k]`` says whether that row may be used (as question or positive).
    """

    corpus_dir: str
    languages: list[str]
    qa_ids: pa.Array
    questions: list[pa.Array]
    positives: list[pa.Array]
    usable: np.ndarray
    positive: str = "passage"
    negatives: list[pa.Array] | None = None
    # With mined negatives: which rows' positives and negatives must not share a batch (see the planner).
    separation: Separation | None = None
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    # Per language: (row indices, reason per row) of the rows not used.
    skipped_rows: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)

    @property
    def num_questions(self) -> int:
        return len(self.qa_ids)

    @property
    def skipped_total(self) -> int:
        return sum(sum(reasons.values()) for reasons in self.skipped.values())

    def usable_counts(self) -> dict[str, int]:
        return {lang: int(self.usable[:, k].sum()) for k, lang in enumerate(self.languages)}

    def skipped_table(self) -> pa.Table:
        """The skipped rows as a quarantine table (QUARANTINE_SCHEMA): shard file, row, field, reason."""
        from polyqa.corpus.schema import QUARANTINE_SCHEMA

        fields_of = {SKIP_QUALITY: "quality_pass", SKIP_NULL_POSITIVE: POSITIVE_FIELD[self.positive],
                     SKIP_HELD_OUT: "title",
                     SKIP_NO_HARD_NEGATIVE: "sentences" if self.positive == "sentence" else "title"}
        out: dict[str, list] = {name: [] for name in QUARANTINE_SCHEMA.names}
        for lang, (rows, reasons) in self.skipped_rows.items():
            if not len(rows):
                continue
            shards = _shard_starts(self.corpus_dir, lang)
            for row, reason in zip(rows.tolist(), reasons):
                path, start = next((p, s) for p, s in reversed(shards) if s <= row)
                out["source"].append(str(path))
                out["row"].append(row - start)
                out["field"].append(fields_of[reason])
                out["reason"].append(f"{reason}: not used for training")
                out["record"].append(json.dumps({"qa_id": self.qa_ids[row].as_py(), "lang": lang}))
        return pa.table(out, schema=QUARANTINE_SCHEMA)

    def text(self, i: int, a: int, b: int) -> dict[str, str]:
        """The texts of pair ``(i, a, b)``."""
        row = {"anchor": self.questions[a][i].as_py(), "positive": self.positives[b][i].as_py()}
        if self.negatives is not None:
            row["negative"] = self.negatives[b][i].as_py()
        return row


def _shard_starts(corpus_dir: str | Path, lang: str) -> list[tuple[Path, int]]:
    """(shard path, index of its first row within the language) in shard order."""
    import pyarrow.dataset as ds

    from polyqa import storage

    out, start = [], 0
    for path in reader.shard_paths(corpus_dir, lang):
        out.append((path, start))
        (source,), filesystem = storage.arrow_source([path])
        start += ds.dataset(source, format="parquet" if path.suffix == ".parquet" else "arrow",
                            filesystem=filesystem).count_rows()
    return out


def _locate(corpus_dir: str | Path, lang: str, row: int) -> str:
    """Name the shard file and row of a row index within one language (shard order)."""
    path, start = next((p, s) for p, s in reversed(_shard_starts(corpus_dir, lang)) if s <= row)
    return f"{path}, row {row - start}"


def _sentence_positives(table: pa.Table) -> tuple[pa.Array, np.ndarray]:
    """The answer sentence of each row, and whether it exists (index not null and in range)."""
    sentences = table.column("sentences").combine_chunks()
    index = table.column("answer_sentence").combine_chunks()
    lengths = pc.list_value_length(sentences).to_numpy(zero_copy_only=False)
    idx = index.to_numpy(zero_copy_only=False)
    valid = ~np.asarray(index.is_null().to_numpy(zero_copy_only=False))
    idx = np.where(valid, np.nan_to_num(idx.astype(float), nan=0).astype(np.int64), 0)
    valid &= (idx >= 0) & (idx < lengths)
    offsets = sentences.offsets.to_numpy()[:-1]
    flat = sentences.values
    positions = np.where(valid, offsets + idx, 0)
    texts = flat.take(pa.array(positions)) if len(flat) else pa.array([""] * len(idx))
    texts = pc.if_else(pa.array(valid), texts, pa.scalar(None, pa.string()))
    return texts, valid


def _sentence_negatives(table: pa.Table) -> tuple[pa.Array, np.ndarray]:
    """A hard negative per row: the sentence after the answer sentence (or before it, if last)."""
    sentences = table.column("sentences").combine_chunks()
    index = table.column("answer_sentence").combine_chunks()
    lengths = pc.list_value_length(sentences).to_numpy(zero_copy_only=False)
    valid = ~np.asarray(index.is_null().to_numpy(zero_copy_only=False))
    idx = np.where(valid, np.nan_to_num(index.to_numpy(zero_copy_only=False).astype(float), nan=0), 0)
    idx = idx.astype(np.int64)
    other = np.where(idx + 1 < lengths, idx + 1, idx - 1)
    valid &= (lengths >= 2) & (other >= 0) & (other < lengths)
    offsets = sentences.offsets.to_numpy()[:-1]
    texts = sentences.values.take(pa.array(np.where(valid, offsets + other, 0)))
    return pc.if_else(pa.array(valid), texts, pa.scalar(None, pa.string())), valid


def _passage_negatives(table: pa.Table) -> tuple[pa.Array, np.ndarray]:
    """A hard negative per row: another passage of the same article (title), the next one in order."""
    titles = table.column("title").to_pylist()
    pids = table.column("passage_id").to_pylist()
    passages = table.column("passage").combine_chunks()
    first_row: dict[str, int] = {}
    by_title: dict[object, list[str]] = {}
    for row, (title, pid) in enumerate(zip(titles, pids)):
        if pid not in first_row:
            first_row[pid] = row
            by_title.setdefault(title, []).append(pid)
    take = np.zeros(len(pids), dtype=np.int64)
    valid = np.zeros(len(pids), dtype=bool)
    for row, (title, pid) in enumerate(zip(titles, pids)):
        group = by_title[title]
        if title is not None and len(group) >= 2:
            other = group[(group.index(pid) + 1) % len(group)]
            take[row], valid[row] = first_row[other], True
    texts = passages.take(pa.array(take))
    return pc.if_else(pa.array(valid), texts, pa.scalar(None, pa.string())), valid


def _key(passage_id: str, sentence: int | None) -> str:
    return passage_id if sentence is None else f"{passage_id}#{sentence}"


def _open_mined(corpus_dir, folder, positive: str):
    from polyqa.errors import ConfigError
    from polyqa.export.mining import MinedNegatives, manifest_sha256

    if folder is None:
        raise ConfigError("hard_negatives: mined needs the folder of the mined negatives",
                          todo="set negatives to a polyqa mine-negatives folder of this corpus")
    mined = MinedNegatives.load(folder)
    problem = mined.verify(manifest_sha256(corpus_dir))
    if problem:
        raise ConfigError(f"the mined negatives cannot be used: {problem}", where=str(folder),
                          todo="mine them again for this corpus (polyqa mine-negatives)")
    if mined.settings["positive"] != positive:
        raise ConfigError(f"the negatives were mined for positive {mined.settings['positive']!r}, training uses "
                          f"{positive!r}", where=str(folder), todo="mine with --positive " + positive)
    return mined


def _mined_negatives(mined, lang: str, table: pa.Table, positive: str,
                     keys: dict[str, int]) -> tuple[pa.Array, np.ndarray, list[set[int]]]:
    """The first mined negative of each row in ``lang`` as text, whether there is one, and the keys of all
    the row's negatives (for the planner's separation)."""
    from polyqa.errors import ConfigError

    if lang not in mined.languages:
        raise ConfigError(f"no negatives were mined for {lang}", where=str(mined.folder),
                          todo="mine every training language")
    negs = mined.table(lang)
    if negs.column("qa_id").to_pylist() != table.column("qa_id").to_pylist():
        raise ConfigError(f"the negatives of {lang} are not aligned with the corpus rows", where=str(mined.folder),
                          todo="mine them again for this corpus")
    text_of = {pid: (passage, sentences) for pid, passage, sentences in zip(
        *(table.column(c).to_pylist() for c in ("passage_id", "passage", "sentences")))}
    texts, ok, row_keys = [], [], []
    for pids, sentences in zip(negs.column("negative_passage_ids").to_pylist(),
                               negs.column("negative_sentences").to_pylist()):
        row_keys.append({keys.setdefault(_key(p, s), len(keys)) for p, s in zip(pids, sentences)})
        if pids:
            passage, sents = text_of[pids[0]]
            texts.append(passage if sentences[0] is None else sents[sentences[0]])
        else:
            texts.append(None)
        ok.append(bool(pids))
    return pa.array(texts, pa.string()), np.array(ok, dtype=bool), row_keys


def load_training_pairs(
    corpus_dir: str | Path,
    languages: Sequence[str] | None = None,
    positive: str = "passage",
    hard_negatives: bool | str = False,
    quality_filter: bool = True,
    exclude_titles: set[str] | frozenset[str] | None = None,
    mined_negatives: str | Path | None = None,
) -> TrainingPairs:
    """Read the training languages of an aligned corpus into ``TrainingPairs``.

    ``positive``: ``passage`` (the row's passage) or ``sentence`` (the answer
    sentence, as LAReQA evaluation retrieves sentences). ``hard_negatives``:
    add a ``negative`` text per row (the neighbouring sentence of the answer
    sentence, or the next passage of the same article); rows without one are
    skipped and counted. ``hard_negatives="mined"``: the first negative mined for the
    row in each language (``mined_negatives``: a ``polyqa mine-negatives`` folder of this
    corpus), given in that language, and a :class:`Separation` so no batch holds a row
    whose negative is another row's positive. ``exclude_titles``: rows of these articles
    are never used (held out for evaluation; skipped as ``held_out_article``).
    """
    if positive not in POSITIVE_KINDS:
        raise ValueError(f"positive must be one of {POSITIVE_KINDS}, got {positive!r}")
    mined = _open_mined(corpus_dir, mined_negatives, positive) if hard_negatives == MINED else None
    keys: dict[str, int] = {}
    negative_keys: list[set[int]] | None = None
    langs = L.normalize_many(list(languages)) if languages else reader.corpus_languages(corpus_dir)
    if len(set(langs)) != len(langs):
        raise ValueError(f"training languages listed twice: {langs}")
    columns = ["qa_id", "passage_id", "title", "question", "passage", "sentences", "answer_sentence", "quality_pass"]
    qa_ids = None
    questions, positives, negatives, masks = [], [], [], []
    skipped: dict[str, dict[str, int]] = {}
    skipped_rows: dict[str, tuple[np.ndarray, list[str]]] = {}
    for lang in langs:
        table = reader.read_language(corpus_dir, lang, columns=columns)
        ids = table.column("qa_id").combine_chunks()
        if qa_ids is None:
            qa_ids = ids
            unique = pc.unique(ids)
            if len(unique) != len(ids):
                counts = pc.value_counts(ids)
                dup = next(v["values"].as_py() for v in counts if v["counts"].as_py() > 1)
                row = ids.to_pylist().index(dup)
                raise ValueError(
                    f"{_locate(corpus_dir, lang, row)}: field qa_id: {dup!r} occurs more than once"
                )
        elif not ids.equals(qa_ids):
            if len(ids) != len(qa_ids):
                raise ValueError(
                    f"{corpus_dir}: lang={lang} has {len(ids)} rows but lang={langs[0]} has "
                    f"{len(qa_ids)}; the corpus is not aligned"
                )
            row = int(np.flatnonzero(pc.not_equal(ids, qa_ids).to_numpy(zero_copy_only=False))[0])
            raise ValueError(
                f"{_locate(corpus_dir, lang, row)}: field qa_id: {ids[row].as_py()!r} where "
                f"lang={langs[0]} has {qa_ids[row].as_py()!r}; the corpus is not aligned"
            )
        quality = table.column("quality_pass").combine_chunks()
        quality_ok = pc.fill_null(quality, False).to_numpy(zero_copy_only=False).astype(bool)
        if not quality_filter:  # every row counts, whatever its quality flags say
            quality_ok = np.ones(len(quality_ok), dtype=bool)
        kept = np.ones(len(quality_ok), dtype=bool)
        if exclude_titles:
            held = pc.is_in(table.column("title"), value_set=pa.array(sorted(exclude_titles), pa.string()))
            kept = ~pc.fill_null(held, False).to_numpy(zero_copy_only=False).astype(bool)
        quality_ok_kept = quality_ok & kept
        if positive == "passage":
            pos = table.column("passage").combine_chunks()
            pos_ok = ~np.asarray(pos.is_null().to_numpy(zero_copy_only=False))
        else:
            pos, pos_ok = _sentence_positives(table)
        reasons = {
            SKIP_QUALITY: int((kept & ~quality_ok).sum()),
            SKIP_NULL_POSITIVE: int((quality_ok_kept & ~pos_ok).sum()),
        }
        if exclude_titles:
            reasons[SKIP_HELD_OUT] = int((~kept).sum())
        usable = quality_ok_kept & pos_ok
        why = np.where(~kept, SKIP_HELD_OUT,
                       np.where(~quality_ok, SKIP_QUALITY, np.where(~pos_ok, SKIP_NULL_POSITIVE, "")))
        if mined is not None:
            neg, neg_ok, row_keys = _mined_negatives(mined, lang, table, positive, keys)
            negative_keys = [set() for _ in range(len(ids))] if negative_keys is None else negative_keys
            for row, found in enumerate(row_keys):
                negative_keys[row].update(found)
        elif hard_negatives:
            neg, neg_ok = (_sentence_negatives if positive == "sentence" else _passage_negatives)(table)
        if hard_negatives:
            reasons[SKIP_NO_HARD_NEGATIVE] = int((usable & ~neg_ok).sum())
            why = np.where(usable & ~neg_ok, SKIP_NO_HARD_NEGATIVE, why)
            usable &= neg_ok
            negatives.append(neg)
        skipped[lang] = reasons
        rows = np.flatnonzero(~usable)
        skipped_rows[lang] = (rows, [str(x) for x in why[rows]])
        questions.append(table.column("question").combine_chunks())
        positives.append(pos)
        masks.append(usable)
    separation = None
    if mined is not None:
        first = reader.read_language(corpus_dir, langs[0], columns=["passage_id", "answer_sentence"]).to_pylist()
        positive_keys = np.array([keys.setdefault(_key(r["passage_id"], r["answer_sentence"] if positive == "sentence"
                                                       else None), len(keys)) for r in first], dtype=np.int64)
        separation = Separation(positive_keys, [frozenset(k) for k in negative_keys])
    return TrainingPairs(
        corpus_dir=str(corpus_dir),
        languages=list(langs),
        qa_ids=qa_ids,
        questions=questions,
        positives=positives,
        usable=np.stack(masks, axis=1) if masks else np.zeros((0, 0), dtype=bool),
        positive=positive,
        negatives=negatives if hard_negatives else None,
        separation=separation,
        skipped=skipped,
        skipped_rows=skipped_rows,
    )
