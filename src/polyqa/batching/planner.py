"""Which pairs go in which batch: the batch strategies on a usable mask alone (no text, no torch).

A pair ``(i, a, b)`` is the question of row ``i`` in language ``a`` with its
positive in language ``b``. Batch kinds:

- ``x-x-mono``: all pairs in one language L (``a == b == L``), L drawn by the
  language weights.
- ``x-x``: every pair monolingual, languages may differ between pairs.
- ``x-y``: every pair has ``a != b``; ordered language pairs drawn uniformly
  (or by the product of the language weights).
- ``hybrid``: per batch, ``x-x-mono`` with probability ``alpha``, else ``x-y``
  (arXiv 2408.10536).

``languages_per_batch`` caps how many distinct languages one batch may touch
(questions and positives together): each batch first draws that many
languages, then its pairs use only those. No qa_id occurs twice in a batch
(its translations would be false negatives for the in-batch loss). With mined
hard negatives (``separate``), no batch holds a row whose negative is another
row's positive in any language (translations share a passage id): that
negative would be a false negative of the other row.

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

This module is the one place for the strategy names; it needs only numpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from polyqa import languages as L

MONO = "x-x-mono"
XX = "x-x"
XY = "x-y"
HYBRID = "hybrid"
STRATEGIES = (MONO, XX, XY, HYBRID)


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
class Separation:
    """Per row: the key of its positive, and the keys of its hard negatives (ids shared by translations)."""

    positive: np.ndarray  # (rows,) int
    negatives: Sequence[frozenset[int]]  # per row

    def fits(self, item: int, positives: set[int], negatives: set[int]) -> bool:
        """Whether row ``item`` may join a batch holding these positive and negative keys."""
        return int(self.positive[item]) not in negatives and not (self.negatives[item] & positives)


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
        separate: Separation | None = None,
    ) -> None:
        usable = np.asarray(usable, dtype=bool)
        if usable.ndim != 2 or usable.shape[1] != len(languages):
            raise ValueError(f"usable mask shape {usable.shape} does not match {len(languages)} languages")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.usable = usable
        self.separate = separate
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
            batch_positives: set[int] = set()
            batch_negatives: set[int] = set()
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
                if item not in in_batch and (self.separate is None
                                             or self.separate.fits(item, batch_positives, batch_negatives)):
                    allowed = langs[self.usable[item, langs]]
                    choice = self._pick(kind, allowed, rng)
                if choice is None:
                    deferred.append(item)
                    misses += 1
                    if misses > 2 * len(self._eligible) + len(pending):
                        raise RuntimeError(
                            f"cannot fill a {kind} batch of {self.batch_size} in languages "
                            f"{[self.languages[j] for j in langs]}: too few usable questions"
                            + (" whose hard negatives are not each other's positives; lower the batch size "
                               "or mine with a wider rank window" if self.separate is not None else "")
                        )
                    continue
                in_batch.add(item)
                if self.separate is not None:
                    batch_positives.add(int(self.separate.positive[item]))
                    batch_negatives.update(self.separate.negatives[item])
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


def decode_flat_index(index: np.ndarray | Sequence[int], num_languages: int) -> tuple[np.ndarray, ...]:
    """Flat pair index ``(i*K + a)*K + b`` -> (question row ``i``, question language ``a``, positive language ``b``)."""
    index = np.asarray(index, dtype=np.int64)
    k = num_languages
    return index // (k * k), (index // k) % k, index % k
