"""The planner inside sentence-transformers: the pair dataset and the batch sampler plug-in.

- ``pair_dataset``: a ``datasets.Dataset`` whose row ``(i*K + a)*K + b`` is
  pair ``(i, a, b)``, with a lazy transform that fetches the texts.
- ``HybridBatchSampler`` / ``BatchSamplerFactory``: a ``BatchPlanner`` as a
  sentence-transformers ``DefaultBatchSampler``
  (``SentenceTransformerTrainingArguments(batch_sampler=BatchSamplerFactory(...))``).

Importing this module imports sentence-transformers (and torch); the planner
and the pair loading do not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
from sentence_transformers.base.sampler import DefaultBatchSampler

from polyqa.batching.pairs import TrainingPairs
from polyqa.batching.planner import BatchingConfig, BatchPlanner, Separation, decode_flat_index

# Column carrying the flat pair index through the collator (removed before tokenising).
PAIR_INDEX_COLUMN = "polyqa_pair"


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
        # Unusable pairs are never drawn, but sentence-transformers' model card reads the first rows of
        # the dataset as they are: give their missing texts as "" rather than None.
        for column in ("anchor", "positive", "negative"):
            if column in out:
                out[column] = ["" if text is None else text for text in out[column]]
        if self.keep_index:
            out[PAIR_INDEX_COLUMN] = list(batch["pair"])
        return out


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


class HybridBatchSampler(DefaultBatchSampler):
    """A ``BatchPlanner`` as a sentence-transformers batch sampler over ``pair_dataset`` indices.

    The trainer calls ``set_epoch(e)`` before each epoch; iteration then yields
    exactly the batches of ``planner.epoch_batches(e)``.
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

    def __init__(self, usable: np.ndarray, languages: Sequence[str], config: BatchingConfig,
                 separate: Separation | None = None) -> None:
        self.usable = np.asarray(usable, dtype=bool)
        self.languages = list(languages)
        self.config = config
        self.separate = separate

    def planner(self, batch_size: int) -> BatchPlanner:
        return BatchPlanner(self.usable, self.languages, batch_size, self.config, self.separate)

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
