"""Hybrid batches for multilingual retriever training (arXiv 2408.10536).

Training data are (question, positive) pairs that exist in several languages:
row ``i`` of every language holds the same qa_id (the corpus is aligned). A
*pair* is ``(i, a, b)``: the question of row ``i`` in language ``a`` with its
positive (the passage, or the answer sentence) in language ``b``.

Batch kinds (DESIGN.md section 3):

- ``x-x-mono``: all pairs in one language L (``a == b == L``), L drawn by the
  language weights.
- ``x-x``: every pair monolingual, languages may differ between pairs.
- ``x-y``: every pair has ``a != b``; ordered language pairs drawn uniformly
  (or by the product of the language weights).
- ``hybrid``: per batch, ``x-x-mono`` with probability ``alpha``, else ``x-y``.

``languages_per_batch`` caps how many distinct languages one batch may touch
(questions and positives together): each batch first draws that many
languages, then its pairs use only those. No qa_id occurs twice in a batch
(its translations would be false negatives for the in-batch loss).

An epoch is one pass over the questions: each epoch walks a fresh
permutation of the qa ids and uses each (at most) once, in whatever language
(pair) its batch draws, so an epoch has ``usable questions // batch size``
batches (``batches_per_epoch`` overrides it). Questions that do not fit a
batch's languages (unusable rows) wait for a later batch of the same epoch.

Determinism and resume: everything a batch contains is a function of
``(seed, epoch, batch index)``. Epoch ``e`` draws from
``numpy.random.default_rng([seed, e])``, so replaying an epoch reproduces it
exactly; the Hugging Face trainer resumes by replaying the epoch and
discarding the first ``k`` batches (``accelerate.skip_first_batches``), and
``BatchPlanner.epoch_batches(epoch, start=k)`` does the same for direct use.

Rows whose ``quality_pass`` is false, or whose positive is null (unprojected
answer sentence), are not usable in their language; they are counted in
``TrainingPairs.skipped``, listed by ``TrainingPairs.skipped_table()`` (shard
file, row, field, reason: the quarantine schema) and never drawn.

The pieces:

- ``load_training_pairs``: corpus -> ``TrainingPairs`` (texts as Arrow arrays,
  usable mask, skip counts).
- ``BatchPlanner``: the sampling logic on a usable mask alone (no text, no
  torch); property-tested.
- ``pair_dataset``: a ``datasets.Dataset`` whose row ``(i*K + a)*K + b`` is
  pair ``(i, a, b)``, with a lazy transform that fetches the texts.
- ``HybridBatchSampler`` / ``BatchSamplerFactory``: the planner as a
  sentence-transformers ``DefaultBatchSampler`` plug-in
  (``SentenceTransformerTrainingArguments(batch_sampler=BatchSamplerFactory(...))``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from polyqa import languages as L
from polyqa.corpus import reader

MONO = "x-x-mono"
XX = "x-x"
XY = "x-y"
HYBRID = "hybrid"
STRATEGIES = (MONO, XX, XY, HYBRID)
POSITIVE_KINDS = ("passage", "sentence")

# Reasons a (qa_id, language) row is not used for training.
SKIP_QUALITY = "quality_pass_false"
SKIP_NULL_POSITIVE = "null_positive"
SKIP_NO_HARD_NEGATIVE = "no_hard_negative"


# --------------------------------------------------------------------------------------------
# Training pairs from a corpus
# --------------------------------------------------------------------------------------------


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


POSITIVE_FIELD = {"passage": "passage", "sentence": "answer_sentence"}


def _shard_starts(corpus_dir: str | Path, lang: str) -> list[tuple[Path, int]]:
    """(shard path, index of its first row within the language) in shard order."""
    import pyarrow.dataset as ds

    out, start = [], 0
    for path in reader.shard_paths(corpus_dir, lang):
        out.append((path, start))
        start += ds.dataset(str(path), format="parquet" if path.suffix == ".parquet" else "arrow").count_rows()
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


def load_training_pairs(
    corpus_dir: str | Path,
    languages: Sequence[str] | None = None,
    positive: str = "passage",
    hard_negatives: bool = False,
) -> TrainingPairs:
    """Read the training languages of an aligned corpus into ``TrainingPairs``.

    ``positive``: ``passage`` (the row's passage) or ``sentence`` (the answer
    sentence, as LAReQA evaluation retrieves sentences). ``hard_negatives``:
    add a ``negative`` text per row (the neighbouring sentence of the answer
    sentence, or the next passage of the same article); rows without one are
    skipped and counted.
    """
    if positive not in POSITIVE_KINDS:
        raise ValueError(f"positive must be one of {POSITIVE_KINDS}, got {positive!r}")
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
        if positive == "passage":
            pos = table.column("passage").combine_chunks()
            pos_ok = ~np.asarray(pos.is_null().to_numpy(zero_copy_only=False))
        else:
            pos, pos_ok = _sentence_positives(table)
        reasons = {
            SKIP_QUALITY: int((~quality_ok).sum()),
            SKIP_NULL_POSITIVE: int((quality_ok & ~pos_ok).sum()),
        }
        usable = quality_ok & pos_ok
        why = np.where(~quality_ok, SKIP_QUALITY, np.where(~pos_ok, SKIP_NULL_POSITIVE, ""))
        if hard_negatives:
            neg, neg_ok = (_sentence_negatives if positive == "sentence" else _passage_negatives)(table)
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
    return TrainingPairs(
        corpus_dir=str(corpus_dir),
        languages=list(langs),
        qa_ids=qa_ids,
        questions=questions,
        positives=positives,
        usable=np.stack(masks, axis=1) if masks else np.zeros((0, 0), dtype=bool),
        positive=positive,
        negatives=negatives if hard_negatives else None,
        skipped=skipped,
        skipped_rows=skipped_rows,
    )


# --------------------------------------------------------------------------------------------
# The planner: which pairs go in which batch
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchingConfig:
    strategy: str = HYBRID
    alpha: float = 0.5  # hybrid: probability of an x-x-mono batch
    languages_per_batch: int | None = None  # None: all training languages
    language_weights: str | Mapping[str, float] = "uniform"  # "uniform", "size" or {lang: weight}
    seed: int = 0
    batches_per_epoch: int | None = None  # default: usable questions // batch size

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.languages_per_batch is not None and int(self.languages_per_batch) < 1:
            raise ValueError(f"languages_per_batch must be >= 1, got {self.languages_per_batch}")
        if isinstance(self.language_weights, str) and self.language_weights not in ("uniform", "size"):
            raise ValueError(
                f"language_weights must be 'uniform', 'size' or a mapping, got {self.language_weights!r}"
            )


@dataclass(frozen=True)
class Batch:
    """One batch: kind, its languages, and the pairs ``(qa[j], q_lang[j], p_lang[j])``."""

    index: int
    kind: str
    languages: tuple[int, ...]
    qa: np.ndarray
    q_lang: np.ndarray
    p_lang: np.ndarray

    def flat_indices(self, num_languages: int) -> list[int]:
        return ((self.qa * num_languages + self.q_lang) * num_languages + self.p_lang).tolist()


class BatchPlanner:
    """Draws batches of pairs over a usable mask ``(num_questions, num_languages)``.

    Each epoch walks a fresh permutation of the questions; a batch takes the
    next questions that fit its languages, and defers the others to later
    batches (like sentence-transformers' NoDuplicatesBatchSampler). When the
    permutation runs out mid-epoch a new one is appended, so every epoch has
    exactly ``len(self)`` full batches.
    """

    def __init__(
        self,
        usable: np.ndarray,
        languages: Sequence[str],
        batch_size: int,
        config: BatchingConfig = BatchingConfig(),
    ) -> None:
        usable = np.asarray(usable, dtype=bool)
        if usable.ndim != 2 or usable.shape[1] != len(languages):
            raise ValueError(f"usable mask shape {usable.shape} does not match {len(languages)} languages")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.usable = usable
        self.languages = list(languages)
        self.batch_size = int(batch_size)
        self.config = config
        k = len(self.languages)
        cap = k if config.languages_per_batch is None else min(int(config.languages_per_batch), k)
        self.languages_per_batch = cap
        needs_pairs = config.strategy == XY or (config.strategy == HYBRID and config.alpha < 1.0)
        if needs_pairs and cap < 2:
            raise ValueError(
                f"strategy {config.strategy} needs x-y batches, which need at least 2 languages per "
                f"batch; got languages_per_batch={config.languages_per_batch} with {k} training "
                f"language(s) {self.languages}"
            )
        self.weights = self._language_weights(config.language_weights)
        if needs_pairs and int((self.weights > 0).sum()) < 2:
            raise ValueError(
                f"strategy {config.strategy} needs x-y batches, but only one language has a "
                f"positive weight: {dict(zip(self.languages, self.weights.tolist()))}"
            )
        counts = usable.sum(axis=1)
        self._eligible = np.flatnonzero(counts >= (2 if config.strategy == XY else 1))
        if config.strategy == MONO or (config.strategy == HYBRID and config.alpha > 0):
            for j, lang in enumerate(self.languages):
                if self.weights[j] > 0 and usable[:, j].sum() < self.batch_size:
                    raise ValueError(
                        f"language {lang} has {int(usable[:, j].sum())} usable rows, fewer than the "
                        f"batch size {self.batch_size}: an x-x-mono batch cannot be filled"
                    )
        if len(self._eligible) < self.batch_size:
            raise ValueError(
                f"only {len(self._eligible)} usable questions for batch size {self.batch_size}"
            )
        default = len(self._eligible) // self.batch_size
        self.batches_per_epoch = int(config.batches_per_epoch or default)

    def _language_weights(self, spec: str | Mapping[str, float]) -> np.ndarray:
        if spec == "uniform":
            w = np.ones(len(self.languages))
        elif spec == "size":
            w = self.usable.sum(axis=0).astype(float)
        else:
            normalized = {L.normalize(lang): float(v) for lang, v in dict(spec).items()}
            unknown = sorted(set(normalized) - set(self.languages))
            if unknown:
                raise ValueError(f"language_weights names languages not trained on: {unknown}")
            w = np.array([normalized.get(lang, 0.0) for lang in self.languages])
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"language weights must be >= 0 with a positive sum, got {w.tolist()}")
        return w / w.sum()

    def __len__(self) -> int:
        return self.batches_per_epoch

    # -- drawing ------------------------------------------------------------------------------

    def _batch_kind(self, rng: np.random.Generator) -> str:
        strategy = self.config.strategy
        if strategy == HYBRID:
            return MONO if rng.random() < self.config.alpha else XY
        return strategy

    def _batch_languages(self, kind: str, rng: np.random.Generator) -> np.ndarray:
        k = len(self.languages)
        size = 1 if kind == MONO else self.languages_per_batch
        nonzero = np.flatnonzero(self.weights > 0)
        if size >= len(nonzero):
            return nonzero  # languages of weight 0 are never drawn
        return np.sort(rng.choice(k, size=size, replace=False, p=self.weights))

    def _pick(
        self, kind: str, allowed: np.ndarray, rng: np.random.Generator
    ) -> tuple[int, int] | None:
        """Languages (question, positive) for one question, given its usable batch languages."""
        if kind == MONO:
            return (int(allowed[0]), int(allowed[0])) if len(allowed) else None
        if kind == XX:
            if not len(allowed):
                return None
            w = self.weights[allowed]
            lang = int(allowed[rng.choice(len(allowed), p=w / w.sum())]) if len(allowed) > 1 else int(allowed[0])
            return lang, lang
        if len(allowed) < 2:
            return None
        # Ordered pair a != b with probability proportional to w_a * w_b.
        w = self.weights[allowed]
        joint = np.outer(w, w)
        np.fill_diagonal(joint, 0.0)
        flat = rng.choice(joint.size, p=(joint / joint.sum()).ravel())
        a, b = divmod(int(flat), len(allowed))
        return int(allowed[a]), int(allowed[b])

    def epoch_batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of one epoch, from batch index ``start`` on (the earlier ones are replayed, not yielded)."""
        rng = np.random.default_rng([int(self.config.seed), int(epoch)])
        stream: list[int] = []
        position = 0
        pending: list[int] = []
        for index in range(self.batches_per_epoch):
            kind = self._batch_kind(rng)
            langs = self._batch_languages(kind, rng)
            in_batch: set[int] = set()
            qa, qs, ps = [], [], []
            deferred: list[int] = []
            misses = 0
            candidates = iter(pending)
            pending_left = True
            while len(qa) < self.batch_size:
                if pending_left:
                    item = next(candidates, None)
                    if item is None:
                        pending_left = False
                        continue
                else:
                    if position >= len(stream):
                        stream.extend(rng.permutation(self._eligible).tolist())
                    item = stream[position]
                    position += 1
                choice = None
                if item not in in_batch:
                    allowed = langs[self.usable[item, langs]]
                    choice = self._pick(kind, allowed, rng)
                if choice is None:
                    deferred.append(item)
                    misses += 1
                    if misses > 2 * len(self._eligible) + len(pending):
                        raise RuntimeError(
                            f"cannot fill a {kind} batch of {self.batch_size} in languages "
                            f"{[self.languages[j] for j in langs]}: too few usable questions"
                        )
                    continue
                in_batch.add(item)
                qa.append(item)
                qs.append(choice[0])
                ps.append(choice[1])
            if pending_left:
                deferred.extend(candidates)
            pending = deferred
            if index >= start:
                yield Batch(
                    index=index,
                    kind=kind,
                    languages=tuple(int(j) for j in langs),
                    qa=np.asarray(qa, dtype=np.int64),
                    q_lang=np.asarray(qs, dtype=np.int64),
                    p_lang=np.asarray(ps, dtype=np.int64),
                )


# --------------------------------------------------------------------------------------------
# sentence-transformers plug-in
# --------------------------------------------------------------------------------------------


def decode_flat_index(index: np.ndarray | Sequence[int], num_languages: int) -> tuple[np.ndarray, ...]:
    """Flat dataset index -> (question row, question language, positive language)."""
    index = np.asarray(index, dtype=np.int64)
    k = num_languages
    return index // (k * k), (index // k) % k, index % k


class _PairTransform:
    """Lazy ``datasets`` transform: flat pair indices -> anchor/positive(/negative) texts."""

    def __init__(self, pairs: TrainingPairs, keep_index: bool) -> None:
        self.pairs = pairs
        self.keep_index = keep_index

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        p = self.pairs
        qa, a, b = decode_flat_index(batch["pair"], len(p.languages))
        out: dict[str, list] = {
            "anchor": [p.questions[x][i].as_py() for i, x in zip(qa.tolist(), a.tolist())],
            "positive": [p.positives[y][i].as_py() for i, y in zip(qa.tolist(), b.tolist())],
        }
        if p.negatives is not None:
            out["negative"] = [p.negatives[y][i].as_py() for i, y in zip(qa.tolist(), b.tolist())]
        if self.keep_index:
            out[PAIR_INDEX_COLUMN] = list(batch["pair"])
        return out


PAIR_INDEX_COLUMN = "polyqa_pair"


def pair_dataset(pairs: TrainingPairs, keep_index: bool = True):
    """A ``datasets.Dataset`` over all pairs: row ``(i*K + a)*K + b`` is pair ``(i, a, b)``.

    Only the integer index is stored; the texts are fetched lazily per batch
    (``with_transform``), so K² pairs cost no copies of the text. With
    ``keep_index`` the rows also carry ``polyqa_pair`` (the flat index), which
    ``polyqa.train``'s collator removes before tokenising.
    """
    from datasets import Dataset

    k = len(pairs.languages)
    n = pairs.num_questions * k * k
    table = pa.table({"pair": pa.array(np.arange(n, dtype=np.int64))})
    return Dataset(table).with_transform(_PairTransform(pairs, keep_index))


def _default_batch_sampler_base():
    from sentence_transformers.base.sampler import DefaultBatchSampler

    return DefaultBatchSampler


class HybridBatchSampler(_default_batch_sampler_base()):
    """A ``BatchPlanner`` as a sentence-transformers batch sampler over ``pair_dataset`` indices.

    The trainer calls ``set_epoch(e)`` before each epoch; iteration then yields
    exactly the batches of ``planner.epoch_batches(e)``. ``history`` (if a
    list) receives every ``Batch`` yielded, for tests and run records.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns: list[str] | None = None,
        generator=None,
        seed: int = 0,
        *,
        planner: BatchPlanner,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        expected = planner.usable.shape[0] * len(planner.languages) ** 2
        if dataset is not None and len(dataset) != expected:
            raise ValueError(
                f"dataset has {len(dataset)} rows; the planner's pair dataset has {expected}"
            )
        self.planner = planner

    def __iter__(self) -> Iterator[list[int]]:
        k = len(self.planner.languages)
        for batch in self.planner.epoch_batches(self.epoch):
            yield batch.flat_indices(k)

    def __len__(self) -> int:
        return len(self.planner)


class BatchSamplerFactory:
    """Picklable ``batch_sampler`` callable for ``SentenceTransformerTrainingArguments``.

    The trainer calls it with ``(dataset, batch_size, drop_last,
    valid_label_columns, generator, seed)``; the batch size is the trainer's
    per-process batch size. The seed is ``config.seed``, not the trainer's.
    """

    def __init__(self, usable: np.ndarray, languages: Sequence[str], config: BatchingConfig) -> None:
        self.usable = np.asarray(usable, dtype=bool)
        self.languages = list(languages)
        self.config = config

    def planner(self, batch_size: int) -> BatchPlanner:
        return BatchPlanner(self.usable, self.languages, batch_size, self.config)

    def __call__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns: list[str] | None = None,
        generator=None,
        seed: int = 0,
    ) -> HybridBatchSampler:
        return HybridBatchSampler(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
            planner=self.planner(batch_size),
        )
