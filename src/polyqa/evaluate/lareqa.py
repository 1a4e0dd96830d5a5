"""XQuAD-R and MLQA-R (LAReQA protocol): loading over :mod:`polyqa.sources.lareqa`, and XQuAD-R from the hub.

Every sentence of every paragraph is a candidate; a question's relevant
candidates are, in every language file that holds its id, its answer sentence
(the sentence whose span holds the first answer's ``answer_start``). XQuAD-R is
11-way parallel; MLQA-R is not (contexts differ, a question id is present in 2
to 4 of its 7 language files). ``lareqa`` is the same protocol on any folder of
``<lang>.json`` SQuAD v1.1 files.

Paragraphs without LAReQA's ``sentences`` / ``sentence_breaks`` (plain SQuAD
files, e.g. XQuAD) are split by polyqa's segmenter, as for XQuAD-R from the hub;
the benchmark's stats count them (``segmented_paragraphs``).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Iterable

from polyqa import languages as langs
from polyqa import paths, storage
from polyqa.evaluate.benchmark import Benchmark, BenchmarkFormatError, Candidate, Query, register_benchmark
from polyqa.evaluate.result import summarize_lareqa
from polyqa.evaluate.retrieval import score_lareqa
from polyqa.sources import lareqa

log = logging.getLogger(__name__)

LAREQA_LANGUAGES = {
    "xquad-r": ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"),
    "mlqa-r": ("ar", "de", "en", "es", "hi", "vi", "zh"),
}
# XQuAD-R on the Hugging Face hub: one config per language, flat SQuAD rows
# (id, context, question, answers) without LAReQA's sentence breaks. MLQA-R is not
# on the hub: it needs a local copy of the LAReQA release.
LAREQA_HUB = {"xquad-r": "google-research-datasets/xquad_r"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_lareqa_dir(name: str, data_dir: str | Path | None) -> Path | storage.RemotePath:
    """The folder of a LAReQA benchmark.

    ``data_dir`` is a local folder, a folder URL (``s3://bucket/xquad-r``, ``hf://datasets/...``,
    ``file://...``), or a hub dataset id with XQuAD-R's flat layout (converted once under
    :func:`polyqa.paths.benchmarks_dir`). Without one: ``$POLYQA_DATA_DIR/<name>`` when it
    holds the release, else XQuAD-R from the hub.
    """
    if data_dir is not None:
        local = storage.as_path(paths.expand(data_dir))
        if local.is_dir():
            return local
        if not _HUB_ID.match(str(data_dir)):
            raise FileNotFoundError(f"{name} folder not found: {local}")
        return hub_lareqa_dir(name, str(data_dir))
    if name not in LAREQA_LANGUAGES:
        raise FileNotFoundError(f"benchmark {name} needs --data-dir: a folder of <lang>.json SQuAD/LAReQA files")
    release = paths.data_dir() / name
    if any(release.glob("*.json")):
        return release
    repo = LAREQA_HUB.get(name)
    if repo is None:
        raise FileNotFoundError(f"{name} is not in {release} nor on the Hugging Face hub: download the LAReQA "
                                f"release and pass its folder as --data-dir (or set {paths.DATA_VAR})")
    return hub_lareqa_dir(name, repo)


def hub_lareqa_dir(name: str, repo: str) -> Path:
    """LAReQA files converted from a hub dataset with XQuAD-R's flat layout (fetched once, needs network)."""
    folder = paths.benchmarks_dir() / repo.replace("/", "--")
    codes = LAREQA_LANGUAGES.get(name, LAREQA_LANGUAGES["xquad-r"])
    if not all((folder / f"{code}.json").exists() for code in codes):
        import datasets

        rows = {code: datasets.load_dataset(repo, code, split="validation") for code in codes}
        write_lareqa_from_flat(rows, folder)
    return folder


def segment_context(context: str, code: str) -> dict:
    """LAReQA's ``sentences`` and ``sentence_breaks`` of a paragraph, from polyqa's segmenter."""
    from polyqa.segment import split_sentences

    sentences = split_sentences(context, langs.normalize(code))
    return {"sentences": [s.text for s in sentences], "sentence_breaks": [[s.start, s.end] for s in sentences],
            "sentence_source": "polyqa.segment"}


def read_segmented(path: Path, code: str) -> tuple[list[lareqa.Paragraph], int]:
    """A file's paragraphs; those without ``sentences`` and ``sentence_breaks`` are segmented by polyqa.

    Returns the paragraphs and how many were segmented. A paragraph with one of the two
    fields but not the other is a format error, as in LAReQA files.
    """
    try:
        doc = lareqa.read_json(path)
    except UnicodeDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}): "
                                   "save the file as UTF-8") from None
    except lareqa.LareqaFormatError as exc:
        raise BenchmarkFormatError(str(exc)) from exc
    segmented = 0
    for article in doc["data"] if isinstance(doc, dict) else ():
        for paragraph in (article.get("paragraphs") or []) if isinstance(article, dict) else ():
            if (isinstance(paragraph, dict) and isinstance(paragraph.get("context"), str)
                    and "sentences" not in paragraph and "sentence_breaks" not in paragraph):
                paragraph.update(segment_context(paragraph["context"], code))
                segmented += 1
    try:
        return list(lareqa.parse_paragraphs(doc, str(path))), segmented
    except lareqa.LareqaFormatError as exc:
        raise BenchmarkFormatError(str(exc)) from exc


def write_lareqa_from_flat(rows_by_language: dict, folder: str | Path) -> Path:
    """Write ``<code>.json`` LAReQA files from flat SQuAD rows (``id, context, question, answers``).

    Rows are grouped into paragraphs by context (in first-seen order, one article per
    paragraph since titles are absent); sentence breaks come from polyqa's segmenter, so
    candidates can differ slightly from LAReQA's own segmentation (recorded as
    ``sentence_source: polyqa.segment`` in every paragraph).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for code, rows in rows_by_language.items():
        paragraphs: dict[str, dict] = {}
        for row in rows:
            context = row["context"]
            if context not in paragraphs:
                paragraphs[context] = {"context": context, **segment_context(context, code), "qas": []}
            answers = row["answers"]
            paragraphs[context]["qas"].append({
                "id": row["id"], "question": row["question"],
                "answers": [{"text": t, "answer_start": int(a)}
                            for t, a in zip(answers["text"], answers["answer_start"])],
            })
        data = [{"title": f"paragraph-{i}", "paragraphs": [p]} for i, p in enumerate(paragraphs.values())]
        storage.atomic_write_text(folder / f"{code}.json",
                                  json.dumps({"version": "flat-hub", "data": data}, ensure_ascii=False))
    return folder


def load_lareqa(
    folder: str | Path | None,
    name: str = "xquad-r",
    languages: Iterable[str] | None = None,
    titles: set[str] | None = None,
    exclude_titles: set[str] | None = None,
    max_questions: int | None = None,
) -> Benchmark:
    """Load XQuAD-R or MLQA-R from one ``<lang>.json`` file per language.

    ``titles`` keeps only articles with those titles (held-out splits),
    ``exclude_titles`` drops them; ``max_questions`` keeps the first N question
    ids (in file order, first language first) for quick runs, while candidates
    stay every sentence of the kept articles.
    """
    folder = resolve_lareqa_dir(name, folder)
    files = lareqa.language_files(folder, languages)
    quarantine: list[dict] = []
    # Per language: candidates and {qid: (question, title, relevant candidate index)}.
    per_lang_cands: dict[str, list[Candidate]] = {}
    per_lang_qas: dict[str, dict[str, tuple[str, str, int]]] = {}
    duplicate_paragraphs = 0
    segmented = 0
    for lang, path in files.items():
        cands: list[Candidate] = []
        qas_out: dict[str, tuple[str, str, int]] = {}
        seen_paragraphs: dict[str, int] = {}  # context -> index of its first sentence
        paragraphs, n_segmented = read_segmented(path, lang)
        segmented += n_segmented
        for para in paragraphs:
            if titles is not None and para.title not in titles:
                continue
            if exclude_titles is not None and para.title in exclude_titles:
                continue
            # MLQA-style files repeat a paragraph once per question group: one candidate set per text.
            if para.context in seen_paragraphs:
                first = seen_paragraphs[para.context]
                duplicate_paragraphs += 1
            else:
                first = seen_paragraphs[para.context] = len(cands)
                cands += [Candidate(lang, sentence, para.context, para.title, f"{lang}/{para.article}.{para.index}/{s}")
                          for s, sentence in enumerate(para.sentences)]
            for q in para.questions:
                reason = q.problem
                if reason is None and q.qid in qas_out:
                    reason = "duplicate question id in file"
                if reason is not None:
                    quarantine.append({"file": str(path), "row": q.where, "qid": q.qid, "reason": reason})
                    continue
                qas_out[q.qid] = (q.question, para.title, first + q.answer_sentence)
        per_lang_cands[lang] = cands
        per_lang_qas[lang] = qas_out

    order = list(files)
    keep_ids: set[str] | None = None
    if max_questions is not None:
        ordered_ids = list(dict.fromkeys(qid for lang in order for qid in per_lang_qas[lang]))
        keep_ids = set(ordered_ids[:max_questions])

    candidates: list[Candidate] = []
    offset: dict[str, int] = {}
    for lang in order:
        offset[lang] = len(candidates)
        candidates.extend(per_lang_cands[lang])
    # A question's relevant candidates: its answer sentence in every language holding its id.
    relevant_by_qid: dict[str, list[int]] = {}
    for lang in order:
        for qid, (_, _, c_idx) in per_lang_qas[lang].items():
            relevant_by_qid.setdefault(qid, []).append(offset[lang] + c_idx)
    queries = [
        Query(qid, lang, question, title, tuple(relevant_by_qid[qid]))
        for lang in order
        for qid, (question, title, _) in per_lang_qas[lang].items()
        if keep_ids is None or qid in keep_ids
    ]
    if not queries:
        raise ValueError(f"{name}: no questions left in {folder} after filtering (titles/languages/max-questions)")
    log.info("%s: %d queries, %d candidates, %d languages, %d quarantined",
             name, len(queries), len(candidates), len(order), len(quarantine))
    return Benchmark(
        name=name,
        languages=order,
        queries=queries,
        candidates=candidates,
        source_codes={lang: files[lang].stem for lang in order},
        quarantine=quarantine,
        stats={"duplicate_paragraphs_merged": duplicate_paragraphs, "segmented_paragraphs": segmented},
        data_dir=str(folder.resolve()),
    )


_LAREQA_PROTOCOL = {"score": score_lareqa, "summarize": summarize_lareqa,
                    "options": ("titles", "exclude_titles"), "contexts": True}


@register_benchmark("xquad-r", title="XQuAD-R", **_LAREQA_PROTOCOL)
def load_xquad_r(data_dir: str | Path | None = None, **options) -> Benchmark:
    """XQuAD-R: 11 languages, every question in every language (local release, or the hub)."""
    return load_lareqa(data_dir, "xquad-r", **options)


@register_benchmark("mlqa-r", title="MLQA-R", **_LAREQA_PROTOCOL)
def load_mlqa_r(data_dir: str | Path | None = None, **options) -> Benchmark:
    """MLQA-R: 7 languages, each question in 2 to 4 of them (local release only)."""
    return load_lareqa(data_dir, "mlqa-r", **options)


@register_benchmark("lareqa", title="LAReQA", **_LAREQA_PROTOCOL)
def load_any_lareqa(data_dir: str | Path | None = None, **options) -> Benchmark:
    """Any folder of <lang>.json SQuAD v1.1 files, with LAReQA sentence breaks or segmented by polyqa."""
    return load_lareqa(data_dir, "lareqa", **options)
