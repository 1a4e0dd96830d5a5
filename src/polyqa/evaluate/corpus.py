"""A polyqa corpus as a LAReQA-protocol benchmark (``--benchmark polyqa-corpus --data-dir CORPUS``).

Queries are the rows' questions in each language; candidates are the sentences
of every passage in every language (each passage once per language, as XQuAD-R's
paragraphs); a query's relevant candidates are the answer sentence
(``answer_sentence``) of its qa_id in every language that has one. With
``titles`` (``--articles-file``) only those articles are kept, so a model can
be evaluated on articles held out of its own training corpus (see
``TrainConfig.exclude_titles_file``).

A row without an answer sentence still asks its question (its relevant
candidates are in the other languages); a qa_id with no answer sentence in any
language, or a qa_id repeated within a language, is quarantined.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from polyqa import languages as L
from polyqa import paths
from polyqa.corpus.reader import require_corpus
from polyqa.errors import PolyqaError
from polyqa.storage import AnyPath
from polyqa.evaluate.benchmark import Benchmark, Candidate, Query, register_benchmark
from polyqa.evaluate.result import summarize_lareqa
from polyqa.evaluate.retrieval import score_lareqa

log = logging.getLogger(__name__)

NAME = "polyqa-corpus"
COLUMNS = ["qa_id", "passage_id", "title", "question", "passage", "sentences", "answer_sentence"]


def _corpus_folder(data_dir: str | Path | None) -> AnyPath:
    if data_dir is None:
        raise PolyqaError(f"benchmark {NAME} needs a corpus folder", todo="set data_dir (--data-dir) to the corpus folder")
    return require_corpus(paths.expand(data_dir))


def load_corpus_benchmark(
    corpus_dir: str | Path | None,
    *,
    languages: Iterable[str] | None = None,
    max_questions: int | None = None,
    titles: set[str] | None = None,
    exclude_titles: set[str] | None = None,
) -> Benchmark:
    """Load a polyqa corpus as a LAReQA-protocol benchmark (see the module docstring)."""
    from polyqa.corpus import reader

    folder = _corpus_folder(corpus_dir)
    available = reader.corpus_languages(folder)
    if languages is not None:
        order = L.normalize_many(list(languages))
        missing = [lang for lang in order if lang not in available]
        if missing:
            raise PolyqaError(f"language(s) {missing} not in the corpus", where=str(folder),
                              todo=f"choose among {available}")
    else:
        order = available

    quarantine: list[dict] = []
    per_lang_cands: dict[str, list[Candidate]] = {}
    # Per language: {qa_id: (question, title, candidate index of its answer sentence or None)}
    per_lang_qas: dict[str, dict[str, tuple[str, str, int | None]]] = {}
    for lang in order:
        table = reader.read_language(folder, lang, columns=COLUMNS)
        cands: list[Candidate] = []
        first_sentence: dict[str, int] = {}  # passage_id -> index of its first candidate
        qas: dict[str, tuple[str, str, int | None]] = {}
        for row_no, row in enumerate(table.to_pylist()):
            title = row["title"] or ""
            if titles is not None and title not in titles:
                continue
            if exclude_titles is not None and title in exclude_titles:
                continue
            where = f"{folder}: lang={lang}, row {row_no}"
            sentences = row["sentences"] or []
            pid = row["passage_id"]
            if pid not in first_sentence:
                first_sentence[pid] = len(cands)
                cands += [Candidate(lang, s, row["passage"], title, f"{lang}/{pid}/{i}")
                          for i, s in enumerate(sentences)]
            qid = row["qa_id"]
            if qid in qas:
                quarantine.append({"file": where, "row": row_no, "qid": qid,
                                   "reason": "duplicate qa_id in this language"})
                continue
            index = row["answer_sentence"]
            if index is not None and not 0 <= index < len(sentences):
                quarantine.append({"file": where, "row": row_no, "qid": qid,
                                   "reason": f"answer_sentence {index} outside its {len(sentences)} sentences"})
                index = None
            qas[qid] = (row["question"], title, None if index is None else first_sentence[pid] + index)
        per_lang_cands[lang] = cands
        per_lang_qas[lang] = qas

    candidates: list[Candidate] = []
    offset: dict[str, int] = {}
    for lang in order:
        offset[lang] = len(candidates)
        candidates.extend(per_lang_cands[lang])
    relevant: dict[str, list[int]] = {}
    for lang in order:
        for qid, (_, _, c_idx) in per_lang_qas[lang].items():
            bucket = relevant.setdefault(qid, [])
            if c_idx is not None:
                bucket.append(offset[lang] + c_idx)
    for qid in [q for q, rel in relevant.items() if not rel]:
        quarantine.append({"file": str(folder), "row": None, "qid": qid,
                           "reason": "no answer sentence in any language"})
    ordered_ids = [qid for qid in dict.fromkeys(q for lang in order for q in per_lang_qas[lang]) if relevant[qid]]
    keep = set(ordered_ids[:max_questions] if max_questions is not None else ordered_ids)
    queries = [Query(qid, lang, question, title, tuple(relevant[qid]))
               for lang in order
               for qid, (question, title, _) in per_lang_qas[lang].items() if qid in keep]
    if not queries:
        raise PolyqaError("no questions left to evaluate", where=str(folder),
                          todo="check --articles-file / --languages (titles must match the corpus' titles)")
    log.info("%s %s: %d queries, %d candidates, %d languages, %d quarantined",
             NAME, folder, len(queries), len(candidates), len(order), len(quarantine))
    return Benchmark(
        name=NAME,
        languages=order,
        queries=queries,
        candidates=candidates,
        source_codes={lang: L.iso639_1(lang) or lang for lang in order},
        quarantine=quarantine,
        data_dir=str(folder.resolve()),
    )


@register_benchmark(NAME, score=score_lareqa, summarize=summarize_lareqa, options=("titles", "exclude_titles"),
                    contexts=True)
def load_polyqa_corpus(data_dir: str | Path | None = None, **options) -> Benchmark:
    """A polyqa corpus folder: its questions against every sentence of its passages (LAReQA protocol)."""
    return load_corpus_benchmark(data_dir, **options)
