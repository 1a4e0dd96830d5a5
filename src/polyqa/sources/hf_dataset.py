"""Any Hugging Face dataset through a column mapping.

``{kind: hf_dataset, dataset: squad, split: train, columns: {...}}`` calls the
real ``datasets.load_dataset(dataset, config, split=..., streaming=True)``;
``dataset: json`` with ``data_files`` reads local files, and ``load_from_disk``
reads a dataset saved with ``save_to_disk``. Ready mappings live in
``source_presets.yaml`` (``squad``, ``nq_open``, ...).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from polyqa.sources.base import SourceError, SourceItem, register_source
from polyqa.sources.jsonl import iter_mapped

REQUIRED = ("question", "passage", "answers")


def load_rows(spec: Mapping[str, Any]):
    """The dataset as an iterable of dict rows (streaming where the loader allows)."""
    import datasets

    if spec.get("load_from_disk"):
        location = str(spec["load_from_disk"])
        try:
            loaded = datasets.load_from_disk(location)
        except FileNotFoundError as exc:
            raise SourceError(location, f"no saved dataset here: {exc}") from None
        if isinstance(loaded, datasets.DatasetDict):
            split = spec.get("split") or "train"
            if split not in loaded:
                raise SourceError(location, f"split {split!r} not in {list(loaded)}", field="split")
            loaded = loaded[split]
        return loaded, location
    if not spec.get("dataset"):
        raise SourceError("config", "hf_dataset source needs 'dataset' or 'load_from_disk'", field="dataset")
    kwargs: dict[str, Any] = {"split": spec.get("split") or "train",
                              "streaming": bool(spec.get("streaming", True))}
    for key in ("data_files", "data_dir", "revision"):
        if spec.get(key) is not None:
            kwargs[key] = spec[key]
    args = [spec["dataset"]] + ([spec["config"]] if spec.get("config") else [])
    location = str(spec["dataset"]) + (f"/{spec['config']}" if spec.get("config") else "")
    try:
        return datasets.load_dataset(*args, **kwargs), location
    except (FileNotFoundError, ValueError, ConnectionError) as exc:
        raise SourceError(location, f"cannot load dataset: {exc}") from None


@register_source("hf_dataset")
def open_hf_dataset(spec: Mapping[str, Any]) -> Iterator[SourceItem]:
    columns = dict(spec.get("columns") or {})
    missing = [key for key in REQUIRED if key not in columns]
    if missing:
        raise SourceError("config", f"hf_dataset columns mapping lacks {missing}", field="columns")
    name = spec.get("name") or spec.get("dataset") or str(spec.get("load_from_disk"))

    def rows() -> Iterator[SourceItem]:
        dataset, location = load_rows(spec)
        features = getattr(dataset, "features", None) or getattr(dataset, "column_names", None)
        if features:
            present = set(features)
            for key, column in columns.items():  # optional columns (id, title) may be absent
                if key in REQUIRED and column and column.split(".")[0] not in present:
                    raise SourceError(location, f"column {column!r} (for {key}) not in dataset columns "
                                      f"{sorted(present)}", field=column)
        limit = spec.get("limit")
        numbered = enumerate(dataset)
        if limit is not None:
            numbered = _take(numbered, int(limit))
        yield from iter_mapped(numbered, location=location, name=name, license=spec.get("license"),
                               columns=columns)

    return rows()


def _take(it, n):
    for i, item in enumerate(it):
        if i >= n:
            return
        yield item
