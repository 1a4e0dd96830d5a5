"""Reading a polyqa corpus: ``<corpus>/lang=<code>/part-KKKKK-of-NNNNN.arrow``.

Shards are aligned across languages (shard k of every language holds the same
qa_ids in the same order), so a parallel view is a zip, not a join.

``corpus_dir`` is a local folder or any fsspec URL (``s3://bucket/corpus``,
``hf://datasets/user/corpus``, ``file://...``); see :mod:`polyqa.storage`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from polyqa import languages as L
from polyqa import storage
from polyqa.corpus.schema import CORPUS_SCHEMA
from polyqa.storage import AnyPath, RemotePath

SHARD_RE = re.compile(r"^part-(\d{5})-of-(\d{5})\.(arrow|parquet)$")


CORPUS_TODO = "pass a folder written by polyqa build-corpus or polyqa import-parallel"


def require_corpus(corpus_dir: str | Path | RemotePath, *, manifest: bool = False,
                   todo: str = CORPUS_TODO) -> AnyPath:
    """The corpus folder, or an error saying what is there instead: nothing, a file, or a folder
    without ``lang=<code>/`` shards (or, with ``manifest``, without ``manifest.json``)."""
    from polyqa.errors import PolyqaError

    root = storage.as_path(corpus_dir)
    if not root.exists():
        raise PolyqaError("corpus folder not found", where=str(root), todo=todo)
    if not root.is_dir():
        raise PolyqaError("a file where a corpus folder is expected", where=str(root),
                          todo="pass the corpus folder (the one holding manifest.json and lang=<code>/)")
    if manifest and not (root / "manifest.json").exists():
        raise PolyqaError("not a polyqa corpus (no manifest.json)", where=str(root),
                          todo=todo + "; a build stopped before its first shard has none yet: rerun it")
    if not manifest and not any(p.is_dir() for p in root.glob("lang=*")):
        raise PolyqaError("not a polyqa corpus (no lang=<code>/ shard folders)", where=str(root), todo=todo)
    return root


def corpus_languages(corpus_dir: str | Path | RemotePath) -> list[str]:
    """Languages present in a corpus folder, from its ``lang=`` partitions."""
    root = storage.as_path(corpus_dir)
    langs = sorted(p.name.split("=", 1)[1] for p in root.glob("lang=*") if p.is_dir())
    if not langs:
        raise FileNotFoundError(f"{root}: no lang=<code>/ partitions; is this a polyqa corpus?")
    return langs


def shard_paths(corpus_dir: str | Path | RemotePath, lang: str) -> list[AnyPath]:
    """Shard files of one language in shard order."""
    folder = storage.as_path(corpus_dir) / f"lang={L.normalize(lang)}"
    paths = [p for p in folder.iterdir() if SHARD_RE.match(p.name)] if folder.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"{folder}: no shards for language {lang}")
    return sorted(paths, key=lambda p: int(SHARD_RE.match(p.name).group(1)))


def _format_of(path: AnyPath) -> str:
    return "parquet" if path.suffix == ".parquet" else "arrow"


def shard_dataset(files: list[AnyPath]) -> ds.Dataset:
    """Shard files (local or on one store) as a ``pyarrow.dataset`` of CORPUS_SCHEMA."""
    sources, filesystem = storage.arrow_source(files)
    return ds.dataset(sources, format=_format_of(files[0]), schema=CORPUS_SCHEMA, filesystem=filesystem)


def open_corpus(corpus_dir: str | Path | RemotePath) -> ds.Dataset:
    """The whole corpus as a ``pyarrow.dataset`` (``lang`` comes from the files' own column)."""
    root = storage.as_path(corpus_dir)
    return shard_dataset([p for lang in corpus_languages(root) for p in shard_paths(root, lang)])


def read_language(
    corpus_dir: str | Path | RemotePath, lang: str, columns: Sequence[str] | None = None
) -> pa.Table:
    """All rows of one language, in shard order (so aligned with every other language)."""
    return shard_dataset(shard_paths(corpus_dir, lang)).to_table(columns=list(columns) if columns else None)


def iter_parallel(
    corpus_dir: str | Path, langs: Sequence[str], columns: Sequence[str] | None = None
) -> Iterator[dict[str, pa.Table]]:
    """Yield ``{lang: table}`` per aligned shard, zipping languages shard by shard.

    The keys are the codes as the caller wrote them (``["en", "de"]`` gives ``shard["de"]``);
    any spelling polyqa understands selects the language.
    """
    given = list(dict.fromkeys(langs))
    codes = {code: L.normalize(code) for code in given}
    per_lang = {code: shard_paths(corpus_dir, nllb) for code, nllb in codes.items()}
    langs = given
    counts = {lang: len(paths) for lang, paths in per_lang.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"{corpus_dir}: languages have different shard counts: {counts}")
    for k in range(next(iter(counts.values()))):
        shard = {}
        for lang in langs:
            table = shard_dataset([per_lang[lang][k]]).to_table(columns=list(columns) if columns else None)
            shard[lang] = table
        ids = {lang: t.column("qa_id") for lang, t in shard.items() if "qa_id" in t.column_names}
        first = next(iter(ids.values()), None)
        for lang, col in ids.items():
            if not col.equals(first):
                raise ValueError(f"{corpus_dir}: shard {k} of {lang} is not aligned with {langs[0]}")
        yield shard
