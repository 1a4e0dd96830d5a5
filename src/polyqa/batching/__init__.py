"""Hybrid batches for multilingual retriever training (arXiv 2408.10536).

- ``polyqa.batching.pairs``: corpus -> ``TrainingPairs`` (texts as Arrow
  arrays, usable mask, skip counts); numpy and pyarrow.
- ``polyqa.batching.planner``: ``BatchPlanner``, the sampling logic on a
  usable mask alone, and the strategy names (x-x-mono, x-x, x-y, hybrid);
  numpy only.
- ``polyqa.batching.st_sampler``: the sentence-transformers adapter
  (``pair_dataset``, ``HybridBatchSampler``, ``BatchSamplerFactory``); torch.

The names below are re-exported lazily, so importing the package (or the
planner alone) stays light and never imports torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyqa.batching.pairs import (
        POSITIVE_FIELD,
        POSITIVE_KINDS,
        SKIP_NO_HARD_NEGATIVE,
        SKIP_NULL_POSITIVE,
        SKIP_QUALITY,
        TrainingPairs,
        load_training_pairs,
    )
    from polyqa.batching.planner import (
        HYBRID,
        MONO,
        STRATEGIES,
        XX,
        XY,
        Batch,
        BatchingConfig,
        BatchPlanner,
        decode_flat_index,
    )
    from polyqa.batching.st_sampler import (
        PAIR_INDEX_COLUMN,
        BatchSamplerFactory,
        HybridBatchSampler,
        pair_dataset,
    )

_SOURCES = {
    "pairs": ("POSITIVE_FIELD", "POSITIVE_KINDS", "SKIP_NO_HARD_NEGATIVE", "SKIP_NULL_POSITIVE", "SKIP_QUALITY",
              "TrainingPairs", "load_training_pairs"),
    "planner": ("HYBRID", "MONO", "STRATEGIES", "XX", "XY", "Batch", "BatchingConfig", "BatchPlanner",
                "decode_flat_index"),
    "st_sampler": ("PAIR_INDEX_COLUMN", "BatchSamplerFactory", "HybridBatchSampler", "pair_dataset"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
