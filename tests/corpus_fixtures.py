"""Small corpora in the polyqa corpus contract, written straight from XQuAD-R files (the committed excerpt).

Training and evaluation tests need aligned Arrow shards, without a build in front of them:
``<dir>/lang=<nllb code>/part-KKKKK-of-NNNNN.arrow`` with ``CORPUS_SCHEMA``
exactly, the same qa_ids in the same order in every language. XQuAD-R is
parallel (same articles, paragraphs and qa ids in every file), so it maps onto
the contract directly. A few rows can be marked as failing quality or with an
unprojected answer so tests can check that they are skipped and counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from polyqa import languages as L
from polyqa.corpus.schema import CORPUS_SCHEMA, PROJECTION_NONE, PROJECTION_SOURCE

XQUAD_R_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")


def xquad_r_rows(xquad_dir: Path, lang: str, limit: int | None = None) -> list[dict]:
    """Rows of one XQuAD-R language file in CORPUS_SCHEMA form, in file order."""
    code = L.normalize(lang)
    path = Path(xquad_dir) / f"{L.iso639_1(code) or lang}.json"
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    rows: list[dict] = []
    for a, article in enumerate(data):
        for p, para in enumerate(article["paragraphs"]):
            starts = [int(b[0]) for b in para["sentence_breaks"]]
            ends = [int(b[1]) for b in para["sentence_breaks"]]
            for qa in para["qas"]:
                answer = qa["answers"][0]
                start = int(answer["answer_start"])
                sentence = next(i for i, (s, e) in enumerate(zip(starts, ends)) if s <= start <= e)
                rows.append(
                    {
                        "qa_id": qa["id"],
                        "passage_id": f"xquad-r/{a:03d}/{p:03d}",
                        "lang": code,
                        "title": article.get("title"),
                        "question": qa["question"],
                        "passage": para["context"],
                        "sentences": list(para["sentences"]),
                        "sentence_starts": starts,
                        "answer_text": answer["text"],
                        "answer_start": start,
                        "answer_sentence": sentence,
                        "answer_sentence_source": "source" if sentence is not None else "none",
                        "answer_projection": PROJECTION_SOURCE,
                        "source": "xquad-r",
                        "license": "CC-BY-SA-4.0",
                        "translated": code != "eng_Latn",
                        "quality_langid": None,
                        "quality_langid_score": None,
                        "quality_length_ratio": None,
                        "quality_repetition": None,
                        "quality_flags": [],
                        "quality_pass": True,
                    }
                )
                if limit is not None and len(rows) >= limit:
                    return rows
    return rows


def write_corpus(
    out_dir: Path,
    rows_by_lang: Mapping[str, list[dict]],
    num_shards: int = 1,
) -> Path:
    """Write aligned shards ``lang=<code>/part-KKKKK-of-NNNNN.arrow`` (zstd Arrow IPC)."""
    out_dir = Path(out_dir)
    sizes = {lang: len(rows) for lang, rows in rows_by_lang.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"languages must have the same rows to be aligned: {sizes}")
    n = next(iter(sizes.values()))
    bounds = [round(k * n / num_shards) for k in range(num_shards + 1)]
    options = ipc.IpcWriteOptions(compression="zstd")
    for lang, rows in rows_by_lang.items():
        folder = out_dir / f"lang={L.normalize(lang)}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(num_shards):
            table = pa.Table.from_pylist(rows[bounds[k] : bounds[k + 1]], schema=CORPUS_SCHEMA)
            path = folder / f"part-{k:05d}-of-{num_shards:05d}.arrow"
            with ipc.new_file(str(path), CORPUS_SCHEMA, options=options) as writer:
                writer.write_table(table)
    return out_dir


def build_xquad_corpus(
    xquad_dir: Path,
    out_dir: Path,
    langs: Iterable[str] = XQUAD_R_LANGS,
    limit: int | None = None,
    num_shards: int = 1,
    failing_quality: Mapping[str, Iterable[int]] | None = None,
    unprojected: Mapping[str, Iterable[int]] | None = None,
) -> Path:
    """A corpus from XQuAD-R: ``limit`` first questions in each of ``langs``.

    ``failing_quality`` / ``unprojected`` map a language to row positions whose
    ``quality_pass`` becomes false, or whose answer becomes unprojected (null
    answer_start and answer_sentence), as a real translated corpus would have.
    """
    rows_by_lang = {L.normalize(lang): xquad_r_rows(xquad_dir, lang, limit) for lang in langs}
    for lang, positions in (failing_quality or {}).items():
        for i in positions:
            row = rows_by_lang[L.normalize(lang)][i]
            row["quality_pass"] = False
            row["quality_flags"] = ["length_ratio"]
    for lang, positions in (unprojected or {}).items():
        for i in positions:
            row = rows_by_lang[L.normalize(lang)][i]
            row.update(answer_start=None, answer_sentence=None, answer_sentence_source="none",
                       answer_projection=PROJECTION_NONE)
    return write_corpus(out_dir, rows_by_lang, num_shards=num_shards)


# Four languages, 240 questions, two shards; a few rows that training must skip and count.
SMALL_CORPUS_LANGS = ("en", "de", "es", "ru")
SMALL_CORPUS_LIMIT = 240
SMALL_CORPUS_FAILING = {"de": [3, 50, 100]}
SMALL_CORPUS_UNPROJECTED = {"es": [7, 120]}


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory, xquad_r_dir) -> Path:
    """Aligned 4-language XQuAD-R corpus (240 qa ids, 2 shards) with 3 failing and 2 unprojected rows."""
    return build_xquad_corpus(
        xquad_r_dir,
        tmp_path_factory.mktemp("corpus") / "xquad-small",
        langs=SMALL_CORPUS_LANGS,
        limit=SMALL_CORPUS_LIMIT,
        num_shards=2,
        failing_quality=SMALL_CORPUS_FAILING,
        unprojected=SMALL_CORPUS_UNPROJECTED,
    )
