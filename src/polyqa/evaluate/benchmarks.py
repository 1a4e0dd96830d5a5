"""Retrieval benchmark loaders: LAReQA (XQuAD-R, MLQA-R) and MIRACL.

A loaded benchmark is a flat, array-friendly structure: a list of queries, a
list of candidates (grouped by language, in language order) and, per query, the
indices of its relevant candidates. Scoring (``retrieval.py``) never looks at
the JSON again.

LAReQA format: SQuAD v1.1 JSON (``data[].paragraphs[].{context, qas[]}``) with
two extra fields per paragraph, ``sentences`` and ``sentence_breaks``
(``[start, end)`` character offsets into ``context``). Every sentence of every
paragraph is a candidate; a question's relevant candidates are, in every
language file that holds its id, the sentence whose span contains the first
answer's ``answer_start``. XQuAD-R is 11-way parallel; MLQA-R is not (contexts
differ, a question id is present in 2 to 4 of its 7 language files).

MIRACL layout (as released on the hub, ``miracl/miracl`` + ``miracl/miracl-corpus``)::

    <dir>/**/topics.miracl-v1.0-<lang>-<split>.tsv   qid \\t query
    <dir>/**/qrels.miracl-v1.0-<lang>-<split>.tsv    qid Q0 docid rel
    <dir>/**/miracl-corpus-v1.0-<lang>/*.jsonl[.gz]  {"docid", "title", "text"}
    (or <dir>/**/miracl-v1.0-<lang>/corpus/*.jsonl[.gz])
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from polyqa import languages as langs

log = logging.getLogger(__name__)

LAREQA_LANGUAGES = {
    "xquad-r": ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"),
    "mlqa-r": ("ar", "de", "en", "es", "hi", "vi", "zh"),
}
# XQuAD-R on the Hugging Face hub: one config per language, flat SQuAD rows
# (id, context, question, answers) without LAReQA's sentence breaks. MLQA-R is not
# on the hub: it needs a local copy of the LAReQA release.
LAREQA_HUB = {"xquad-r": "google-research-datasets/xquad_r"}
MIRACL_HUB_TOPICS = "miracl/miracl"
MIRACL_HUB_CORPUS = "miracl/miracl-corpus"


class BenchmarkFormatError(ValueError):
    """A benchmark file that does not follow its format (names file, row and field)."""


@dataclass(frozen=True)
class Candidate:
    language: str  # NLLB code
    text: str  # the sentence (LAReQA) or "title text" passage (MIRACL)
    context: str  # the paragraph (LAReQA); "" for MIRACL
    title: str
    key: str  # stable id: "<lang>/<paragraph#>/<sentence#>" or the MIRACL docid


@dataclass(frozen=True)
class Query:
    qid: str
    language: str  # NLLB code
    text: str
    title: str
    relevant: tuple[int, ...]  # candidate indices (any language)
    gains: tuple[float, ...] = ()  # graded relevance aligned with ``relevant`` (MIRACL)


@dataclass
class Benchmark:
    name: str
    languages: list[str]  # NLLB codes, in candidate block order
    queries: list[Query]
    candidates: list[Candidate]
    source_codes: dict[str, str] = field(default_factory=dict)  # NLLB code -> file code
    quarantine: list[dict] = field(default_factory=list)  # unusable rows with a reason
    stats: dict = field(default_factory=dict)

    def counts(self) -> dict:
        per_lang_q = {lang: 0 for lang in self.languages}
        per_lang_c = {lang: 0 for lang in self.languages}
        for q in self.queries:
            per_lang_q[q.language] += 1
        for c in self.candidates:
            per_lang_c[c.language] += 1
        return {
            "queries": len(self.queries),
            "candidates": len(self.candidates),
            "queries_per_language": per_lang_q,
            "candidates_per_language": per_lang_c,
            "question_ids": len({q.qid for q in self.queries}),
            "quarantined": len(self.quarantine),
            **self.stats,
        }


# --------------------------------------------------------------------------- LAReQA


def resolve_lareqa_dir(name: str, data_dir: str | Path | None) -> Path:
    """The local folder of a LAReQA benchmark; without one, XQuAD-R is read from the hub.

    ``data_dir`` may be a local folder, or a hub dataset id with XQuAD-R's flat layout.
    """
    if data_dir is not None and Path(data_dir).is_dir():
        return Path(data_dir)
    if data_dir is not None and "/" not in str(data_dir):
        raise FileNotFoundError(f"benchmark folder not found: {data_dir}")
    repo = str(data_dir) if data_dir is not None else LAREQA_HUB.get(name)
    if repo is None:
        raise FileNotFoundError(f"{name} is not on the Hugging Face hub: download the LAReQA release "
                                "and pass its folder as --data-dir")
    import os

    import datasets  # real hub loading (needs network)

    cache = Path(os.environ.get("POLYQA_HOME", Path.home() / ".cache" / "polyqa")) / "benchmarks"
    folder = cache / repo.replace("/", "--")
    if not all((folder / f"{code}.json").exists() for code in LAREQA_LANGUAGES[name]):
        rows = {code: datasets.load_dataset(repo, code, split="validation") for code in LAREQA_LANGUAGES[name]}
        write_lareqa_from_flat(rows, folder)
    return folder


def write_lareqa_from_flat(rows_by_language: dict, folder: str | Path) -> Path:
    """Write ``<code>.json`` LAReQA files from flat SQuAD rows (``id, context, question, answers``).

    Rows are grouped into paragraphs by context (in first-seen order, one article per
    paragraph since titles are absent); sentence breaks come from polyqa's segmenter, so
    candidates can differ slightly from LAReQA's own segmentation (recorded as
    ``sentence_source: polyqa.segment`` in every paragraph).
    """
    from polyqa.segment import split_sentences

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for code, rows in rows_by_language.items():
        paragraphs: dict[str, dict] = {}
        for row in rows:
            context = row["context"]
            if context not in paragraphs:
                sentences = split_sentences(context, langs.normalize(code))
                paragraphs[context] = {
                    "context": context,
                    "sentences": [s.text for s in sentences],
                    "sentence_breaks": [[s.start, s.end] for s in sentences],
                    "sentence_source": "polyqa.segment",
                    "qas": [],
                }
            answers = row["answers"]
            paragraphs[context]["qas"].append({
                "id": row["id"], "question": row["question"],
                "answers": [{"text": t, "answer_start": int(a)}
                            for t, a in zip(answers["text"], answers["answer_start"])],
            })
        data = [{"title": f"paragraph-{i}", "paragraphs": [p]} for i, p in enumerate(paragraphs.values())]
        tmp = folder / f".{code}.json.tmp"
        tmp.write_text(json.dumps({"version": "flat-hub", "data": data}, ensure_ascii=False), "utf-8")
        tmp.replace(folder / f"{code}.json")
    return folder


def _lareqa_files(folder: Path, name: str, languages: Iterable[str] | None) -> dict[str, Path]:
    """Map NLLB code -> language file; ``languages`` in any accepted spelling."""
    available = {}
    for path in sorted(folder.glob("*.json")):
        try:
            available[langs.normalize(path.stem.split("-")[-1].split("_")[-1])] = path
        except langs.UnknownLanguageError:
            continue
    if not available:
        raise FileNotFoundError(f"no <lang>.json files in {folder} for {name}")
    if languages is None:
        return available
    wanted = langs.normalize_many(list(languages))
    missing = [w for w in wanted if w not in available]
    if missing:
        raise FileNotFoundError(
            f"{folder}: no file for language(s) {missing}; found {sorted(p.name for p in available.values())}"
        )
    return {w: available[w] for w in wanted}


def _field(obj: dict, key: str, typ, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise BenchmarkFormatError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, typ):
        names = "/".join(t.__name__ for t in typ) if isinstance(typ, tuple) else typ.__name__
        raise BenchmarkFormatError(f"{where}: field {key!r} should be {names}, got {type(value).__name__}")
    return value


def _answer_sentence(breaks: list, answer_start: int) -> int | None:
    for i, (start, end) in enumerate(breaks):
        if start <= answer_start < end:
            return i
    return None


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
    files = _lareqa_files(folder, name, languages)
    quarantine: list[dict] = []
    # Per language: candidates and {qid: (question, title, relevant sentence index)}.
    per_lang_cands: dict[str, list[Candidate]] = {}
    per_lang_qas: dict[str, dict[str, tuple[str, str, int]]] = {}
    duplicate_paragraphs = 0
    for lang, path in files.items():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{path}: not valid JSON ({exc})") from exc
        articles = _field(doc, "data", list, str(path))
        cands: list[Candidate] = []
        qas_out: dict[str, tuple[str, str, int]] = {}
        seen_paragraphs: dict[str, int] = {}  # context -> index of its first sentence
        for a_i, article in enumerate(articles):
            where_a = f"{path}: data[{a_i}]"
            title = str(article.get("title", "")) if isinstance(article, dict) else ""
            if titles is not None and title not in titles:
                continue
            if exclude_titles is not None and title in exclude_titles:
                continue
            for p_i, para in enumerate(_field(article, "paragraphs", list, where_a)):
                where = f"{where_a}.paragraphs[{p_i}]"
                context = _field(para, "context", str, where)
                sentences = _field(para, "sentences", list, where)
                breaks = _field(para, "sentence_breaks", list, where)
                if len(sentences) != len(breaks):
                    raise BenchmarkFormatError(
                        f"{where}: {len(sentences)} 'sentences' but {len(breaks)} 'sentence_breaks'"
                    )
                for b_i, br in enumerate(breaks):
                    if not (isinstance(br, list) and len(br) == 2 and all(isinstance(x, int) for x in br)):
                        raise BenchmarkFormatError(f"{where}: sentence_breaks[{b_i}] should be [start, end], got {br!r}")
                # MLQA-style files repeat a paragraph once per question group: one candidate set per text.
                if context in seen_paragraphs:
                    first = seen_paragraphs[context]
                    duplicate_paragraphs += 1
                else:
                    first = len(cands)
                    seen_paragraphs[context] = first
                    for s_i, sentence in enumerate(sentences):
                        cands.append(Candidate(lang, str(sentence), context, title, f"{lang}/{a_i}.{p_i}/{s_i}"))
                for q_i, qa in enumerate(_field(para, "qas", list, where)):
                    where_q = f"{where}.qas[{q_i}]"
                    qid = str(_field(qa, "id", (str, int), where_q))
                    question = _field(qa, "question", str, where_q)
                    answers = _field(qa, "answers", list, where_q)
                    reason = None
                    if not answers:
                        reason = "no answers"
                    else:
                        start = _field(answers[0], "answer_start", int, f"{where_q}.answers[0]")
                        s_idx = _answer_sentence(breaks, start)
                        if s_idx is None:
                            reason = f"answer_start {start} is in no sentence_breaks span"
                    if reason is None and qid in qas_out:
                        reason = "duplicate question id in file"
                    if reason is not None:
                        quarantine.append({"file": str(path), "row": where_q, "qid": qid, "reason": reason})
                        continue
                    qas_out[qid] = (question, title, first + s_idx)
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
        stats={"duplicate_paragraphs_merged": duplicate_paragraphs},
    )


def read_titles(path: str | Path) -> set[str]:
    """Article titles from a text file (one per line, '#' comments) or a JSON list."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise BenchmarkFormatError(f"{path}: expected a JSON list of title strings")
        return set(data)
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


# --------------------------------------------------------------------------- MIRACL


def _find_one(root: Path, pattern: str) -> Path | None:
    hits = sorted(root.rglob(pattern))
    return hits[0] if hits else None


def miracl_languages(root: str | Path, split: str = "dev") -> list[str]:
    """File codes of the MIRACL languages that have topics for ``split`` under ``root``."""
    found = []
    for path in sorted(Path(root).rglob(f"topics.miracl-v1.0-*-{split}.tsv")):
        found.append(path.name[len("topics.miracl-v1.0-"): -len(f"-{split}.tsv")])
    return found


def _read_jsonl(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkFormatError(f"{path}: line {line_no}: not valid JSON ({exc})") from exc


def load_miracl(
    root: str | Path,
    languages: Iterable[str] | None = None,
    split: str = "dev",
    max_questions: int | None = None,
) -> Benchmark:
    """Load MIRACL topics, qrels and corpus for some languages from local files.

    Each language is its own monolingual retrieval task; a judged docid missing
    from the corpus and a query with no positive judgement go to the quarantine.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MIRACL folder not found: {root}")
    codes = list(languages) if languages is not None else miracl_languages(root, split)
    if not codes:
        raise FileNotFoundError(f"{root}: no topics.miracl-v1.0-<lang>-{split}.tsv files")
    queries: list[Query] = []
    candidates: list[Candidate] = []
    quarantine: list[dict] = []
    order: list[str] = []
    source_codes: dict[str, str] = {}
    for code in codes:
        code = langs.iso639_1(langs.normalize(code)) or code
        lang = langs.normalize(code)
        order.append(lang)
        source_codes[lang] = code
        topics = _find_one(root, f"topics.miracl-v1.0-{code}-{split}.tsv")
        qrels = _find_one(root, f"qrels.miracl-v1.0-{code}-{split}.tsv")
        if topics is None or qrels is None:
            raise FileNotFoundError(f"{root}: topics or qrels for {code!r} split {split!r} not found")
        corpus_files = [
            p for p in sorted(root.rglob("*.jsonl*"))
            if p.parent.name == f"miracl-corpus-v1.0-{code}"
            or (p.parent.name == "corpus" and p.parent.parent.name == f"miracl-v1.0-{code}")
        ]
        if not corpus_files:
            raise FileNotFoundError(f"{root}: no corpus jsonl for {code!r} (miracl-corpus-v1.0-{code}/*.jsonl[.gz])")
        doc_index: dict[str, int] = {}
        for path in corpus_files:
            for line_no, row in _read_jsonl(path):
                for key in ("docid", "text"):
                    if key not in row:
                        raise BenchmarkFormatError(f"{path}: line {line_no}: missing field {key!r}")
                if row["docid"] in doc_index:
                    quarantine.append({"file": str(path), "row": line_no, "qid": None, "reason": f"duplicate docid {row['docid']}"})
                    continue
                title = str(row.get("title") or "")
                doc_index[row["docid"]] = len(candidates)
                text = f"{title} {row['text']}".strip() if title else str(row["text"])
                candidates.append(Candidate(lang, text, "", title, str(row["docid"])))
        judged: dict[str, dict[int, float]] = {}
        for line_no, line in enumerate(qrels.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 4:
                raise BenchmarkFormatError(f"{qrels}: line {line_no}: expected 'qid Q0 docid rel', got {line!r}")
            qid, _, docid, rel = parts
            try:
                gain = float(rel)
            except ValueError as exc:
                raise BenchmarkFormatError(f"{qrels}: line {line_no}: field 'rel' is not a number: {rel!r}") from exc
            if docid not in doc_index:
                quarantine.append({"file": str(qrels), "row": line_no, "qid": qid, "reason": f"docid {docid} not in corpus"})
                continue
            if gain > 0:
                judged.setdefault(qid, {})[doc_index[docid]] = gain
        n_lang = 0
        for line_no, line in enumerate(topics.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            qid, sep, text = line.partition("\t")
            if not sep:
                raise BenchmarkFormatError(f"{topics}: line {line_no}: expected 'qid<TAB>query', got {line!r}")
            if qid not in judged:
                quarantine.append({"file": str(topics), "row": line_no, "qid": qid, "reason": "no positive qrels"})
                continue
            if max_questions is not None and n_lang >= max_questions:
                break
            rel = judged[qid]
            queries.append(Query(qid, lang, text.strip(), "", tuple(rel), tuple(rel.values())))
            n_lang += 1
    return Benchmark("miracl", order, queries, candidates, source_codes, quarantine, {"split": split})


def load_benchmark(
    name: str,
    data_dir: str | Path | None,
    languages: Iterable[str] | None = None,
    titles: set[str] | None = None,
    exclude_titles: set[str] | None = None,
    max_questions: int | None = None,
    split: str = "dev",
) -> Benchmark:
    """Load a benchmark by name: ``xquad-r``, ``mlqa-r`` or ``miracl``."""
    if name in LAREQA_LANGUAGES:
        return load_lareqa(data_dir, name, languages, titles, exclude_titles, max_questions)
    if name == "miracl":
        if data_dir is None:
            raise ValueError("MIRACL needs --data-dir (a local folder in MIRACL's layout)")
        if titles or exclude_titles:
            raise ValueError("title filters apply to LAReQA benchmarks only")
        return load_miracl(data_dir, languages, split, max_questions)
    raise ValueError(f"unknown benchmark {name!r}; choose xquad-r, mlqa-r or miracl")
