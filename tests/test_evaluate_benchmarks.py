"""Benchmark loaders: XQuAD-R (shared data, read in place), the MLQA-R and MIRACL fixtures, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyqa.evaluate.benchmark import BenchmarkFormatError, load_benchmark
from polyqa.evaluate.lareqa import load_lareqa, resolve_lareqa_dir, write_lareqa_from_flat
from polyqa.splits import read_titles
from polyqa.evaluate.miracl import load_miracl

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def xquad_three(xquad_r):
    return load_lareqa(xquad_r.dir, "xquad-r", languages=["en", "de", "zh"])


def test_xquad_r_counts_and_parallel_relevance(xquad_three, xquad_r):
    b = xquad_three
    assert b.languages == ["eng_Latn", "deu_Latn", "zho_Hans"]
    counts = b.counts()
    n = xquad_r.questions
    assert counts["queries_per_language"] == {"eng_Latn": n, "deu_Latn": n, "zho_Hans": n}
    assert counts["question_ids"] == n and counts["quarantined"] == 0
    # Candidates = every sentence of every paragraph, per language.
    en = json.loads((xquad_r.dir / "en.json").read_text())
    n_en = sum(len(p["sentences"]) for a in en["data"] for p in a["paragraphs"])
    assert counts["candidates_per_language"]["eng_Latn"] == n_en
    # Every query has one relevant sentence per language, each containing its answer in that language.
    for q in b.queries[:: 97]:
        assert sorted(b.candidates[i].language for i in q.relevant) == sorted(b.languages)
    first = en["data"][0]["paragraphs"][0]
    qa = first["qas"][0]
    q = next(q for q in b.queries if q.qid == qa["id"] and q.language == "eng_Latn")
    rel_en = next(b.candidates[i] for i in q.relevant if b.candidates[i].language == "eng_Latn")
    assert qa["answers"][0]["text"] in rel_en.text
    assert rel_en.context == first["context"]


def test_xquad_r_title_filters_and_max_questions(xquad_r, tmp_path):
    xquad_r_dir = xquad_r.dir
    titles_file = tmp_path / "held_out.txt"
    titles_file.write_text("# held-out articles\nSuper_Bowl_50\nWarsaw\n")
    titles = read_titles(titles_file)
    b = load_lareqa(xquad_r_dir, "xquad-r", ["en", "el"], titles=titles)
    assert {c.title for c in b.candidates} == {"Super_Bowl_50", "Warsaw"}
    assert {q.title for q in b.queries} == {"Super_Bowl_50", "Warsaw"}
    rest = load_lareqa(xquad_r_dir, "xquad-r", ["en", "el"], exclude_titles=titles)
    assert len(rest.queries) + len(b.queries) == 2 * xquad_r.questions
    assert not {c.title for c in rest.candidates} & titles
    small = load_lareqa(xquad_r_dir, "xquad-r", ["en", "el"], max_questions=5)
    assert len(small.queries) == 10 and len({q.qid for q in small.queries}) == 5
    assert len(small.candidates) == len(load_lareqa(xquad_r_dir, "xquad-r", ["en", "el"]).candidates)


def test_mlqa_r_partial_languages_duplicates_and_quarantine():
    b = load_benchmark("mlqa-r", FIXTURES / "mlqa-r")
    assert b.languages == ["deu_Latn", "eng_Latn", "spa_Latn"]  # file order (sorted)
    by_key = {(q.qid, q.language): q for q in b.queries}
    # m1 exists in en and de only: two relevant candidates, in those languages.
    m1 = by_key[("m1", "eng_Latn")]
    assert sorted(b.candidates[i].language for i in m1.relevant) == ["deu_Latn", "eng_Latn"]
    assert {b.candidates[i].text for i in m1.relevant} == {"It flows through ten countries.", "Sie fließt durch zehn Länder."}
    # m5 exists in de only.
    assert [b.candidates[i].text for i in by_key[("m5", "deu_Latn")].relevant] == ["Die Stadt ist die Hauptstadt Österreichs."]
    # The repeated German paragraph yields one set of candidates.
    assert b.counts()["candidates_per_language"]["deu_Latn"] == 2 + 3
    assert b.stats["duplicate_paragraphs_merged"] == 1
    # The answer outside every sentence span is quarantined with file, row and reason.
    assert len(b.quarantine) == 1
    bad = b.quarantine[0]
    assert bad["qid"] == "m6" and bad["file"].endswith("es.json") and "answer_start 9999" in bad["reason"]
    assert ("m6", "spa_Latn") not in by_key


def test_lareqa_bad_input_names_file_row_and_field(tmp_path):
    doc = json.loads((FIXTURES / "mlqa-r" / "en.json").read_text())
    del doc["data"][1]["paragraphs"][0]["sentence_breaks"]
    (tmp_path / "en.json").write_text(json.dumps(doc))
    with pytest.raises(BenchmarkFormatError, match=r"en\.json: data\[1\]\.paragraphs\[0\]: missing field 'sentence_breaks'"):
        load_lareqa(tmp_path, "mlqa-r")
    with pytest.raises(FileNotFoundError, match="hi"):
        load_lareqa(FIXTURES / "mlqa-r", "mlqa-r", languages=["hi"])


def test_miracl_fixture():
    b = load_miracl(FIXTURES / "miracl")
    assert b.languages == ["deu_Latn", "eng_Latn"]
    assert b.counts()["candidates_per_language"] == {"deu_Latn": 6, "eng_Latn": 8}
    q1 = next(q for q in b.queries if q.qid == "1")
    # Only positive judgements are relevant; gains kept.
    assert sorted(b.candidates[i].key for i in q1.relevant) == ["100#0", "100#1"] and q1.gains == (1.0, 1.0)
    assert all(b.candidates[i].language == q.language for q in b.queries for i in q.relevant)
    reasons = sorted(r["reason"] for r in b.quarantine)
    assert reasons == ["docid 999#9 not in corpus", "no positive qrels"]
    only_en = load_miracl(FIXTURES / "miracl", languages=["eng_Latn"])
    assert only_en.languages == ["eng_Latn"] and len(only_en.queries) == 3
    assert b.candidates[0].text.startswith("Donau ")  # title + text


def test_miracl_bad_qrels(tmp_path):
    import shutil

    shutil.copytree(FIXTURES / "miracl", tmp_path / "m")
    qrels = tmp_path / "m" / "miracl-v1.0-de" / "qrels" / "qrels.miracl-v1.0-de-dev.tsv"
    qrels.write_text("11 Q0 200#1 yes\n")
    with pytest.raises(BenchmarkFormatError, match=r"qrels\.miracl-v1\.0-de-dev\.tsv: line 1: field 'rel'"):
        load_miracl(tmp_path / "m", ["de"])


def _write_miracl(root: Path, passages: list[tuple[str, str]], topics: dict[str, str],
                  qrels: list[tuple[str, str, int]]) -> None:
    corpus = root / "miracl-corpus-v1.0-de"
    corpus.mkdir(parents=True)
    half = len(passages) // 2  # two corpus files: the stream crosses a file boundary
    for i, part in enumerate((passages[:half], passages[half:])):
        (corpus / f"docs-{i}.jsonl").write_text(
            "".join(json.dumps({"docid": d, "title": "", "text": t}) + "\n" for d, t in part))
    folder = root / "miracl-v1.0-de"
    (folder / "topics").mkdir(parents=True)
    (folder / "qrels").mkdir()
    (folder / "topics" / "topics.miracl-v1.0-de-dev.tsv").write_text(
        "".join(f"{q}\t{t}\n" for q, t in topics.items()))
    (folder / "qrels" / "qrels.miracl-v1.0-de-dev.tsv").write_text(
        "".join(f"{q} Q0 {d} {g}\n" for q, d, g in qrels))


def test_miracl_streamed_corpus_scores_exactly_as_the_whole_corpus_at_once(tmp_path):
    """The corpus is scored in chunks of any size, with ties at the nDCG cut-off and around relevant
    passages, a repeated docid and a passage judged not relevant; the result equals scoring every
    passage at once (sklearn's tie-averaged nDCG, ranks counted over the whole corpus)."""
    import numpy as np
    from sklearn.metrics import ndcg_score

    from polyqa.evaluate.retrieval import score_miracl

    rng = np.random.default_rng(0)
    # 7 distinct texts for 60 passages: many exact ties. Components are multiples of 1/4, so every
    # dot product is exact in float32 whatever the summation order (ties stay ties across chunks).
    texts = [f"text {i}" for i in range(7)]
    vectors = {t: rng.integers(-2, 3, size=8).astype(np.float32) / 4 for t in texts}
    passages = [(f"d{i}", texts[int(rng.integers(0, 7))]) for i in range(60)]
    passages.insert(31, ("d5", "text 6"))  # a repeat of docid d5: quarantined, never scored
    topics = {f"q{j}": texts[j % 7] for j in range(6)}
    qrels = [("q0", "d1", 1), ("q0", "d2", 2), ("q0", "d3", 0), ("q1", "d4", 1), ("q2", "d5", 1),
             ("q2", "d40", 1), ("q2", "d41", 3), ("q3", "d7", 1), ("q4", "d50", 1), ("q5", "d59", 2),
             ("q5", "d0", 1), ("q1", "nope", 1)]
    _write_miracl(tmp_path, passages, topics, qrels)
    bench = load_miracl(tmp_path, ["de"])
    stream = bench.streamed["deu_Latn"]
    judged = {d for _, d, g in qrels if g > 0 and d != "nope"}
    assert len(bench.candidates) == len(judged)
    assert stream.passages == 60 - len(judged)
    assert bench.counts()["candidates_per_language"] == {"deu_Latn": 60}
    assert {(r["reason"], Path(r["file"]).name, r["row"]) for r in bench.quarantine} == {
        ("duplicate docid d5", "docs-1.jsonl", 2), ("docid nope not in corpus", "qrels.miracl-v1.0-de-dev.tsv", 12)}

    sizes = []

    def encode(batch):
        sizes.append(len(batch))
        return np.stack([vectors[t] for t in batch])

    q_emb = encode([q.text for q in bench.queries])
    c_emb = encode([c.text for c in bench.candidates])
    # The reference: every passage (first occurrence of each docid) scored at once.
    ids, seen = [], set()
    for d, t in passages:
        if d not in seen:
            seen.add(d)
            ids.append((d, t))
    all_emb = encode([t for _, t in ids])
    cases = set()
    for k, recall_k in ((3, 5), (10, 20)):
        want_ndcg, want_recall = [], []
        for q, emb in zip(bench.queries, q_emb):
            gain_of = {bench.candidates[i].key: g for i, g in zip(q.relevant, q.gains)}
            gains = np.array([gain_of.get(d, 0.0) for d, _ in ids])
            scores = all_emb @ emb
            want_ndcg.append(ndcg_score(gains[None], scores[None], k=k))
            ranks = [(scores >= scores[j]).sum() for j in np.nonzero(gains)[0]]
            want_recall.append(np.mean(np.array(ranks) <= recall_k))
            kth = np.sort(scores)[-k]
            cases |= {"tie at the cut-off"} if (scores >= kth).sum() > k else set()
            cases |= {"partial nDCG"} if 0 < want_ndcg[-1] < 1 else set()
            cases |= {"partial recall"} if 0 < want_recall[-1] < 1 else set()
        for chunk in (1, 4, 7, 1000):
            sizes.clear()
            got = score_miracl(bench, q_emb, c_emb, ndcg_k=k, recall_k=recall_k, chunk_size=2, encode=encode,
                               stream_chunk=chunk)
            assert max(sizes) == min(chunk, stream.passages) and sum(sizes) == stream.passages  # chunk by chunk
            np.testing.assert_allclose(got.ndcg, want_ndcg, atol=1e-6, err_msg=f"k={k} chunk={chunk}")
            np.testing.assert_allclose(got.recall, want_recall, err_msg=f"k={k} chunk={chunk}")
    assert cases == {"tie at the cut-off", "partial nDCG", "partial recall"}  # the data exercises each


def _flat_rows(path):
    """XQuAD-R JSON flattened to the hub's rows (id, context, question, answers)."""
    rows = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows.append({"id": qa["id"], "context": paragraph["context"], "question": qa["question"],
                             "answers": {"text": [a["text"] for a in qa["answers"]],
                                         "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    return rows


def test_hub_flat_rows_become_lareqa_files(tmp_path, xquad_r):
    xquad_r_dir = xquad_r.dir
    import datasets

    rows = {code: datasets.Dataset.from_list(_flat_rows(xquad_r_dir / f"{code}.json")) for code in ("en", "de")}
    folder = write_lareqa_from_flat(rows, tmp_path / "hub")
    hub = load_lareqa(folder, "xquad-r", ["en", "de"], None, None, None)
    released = load_lareqa(xquad_r_dir, "xquad-r", ["en", "de"], None, None, None)
    assert len(hub.queries) == len(released.queries) == 2 * xquad_r.questions
    # pysbd's sentences instead of LAReQA's: the candidate count stays close to the release's
    assert abs(len(hub.candidates) - len(released.candidates)) < 0.05 * len(released.candidates)
    # every question keeps a relevant sentence in both languages
    assert sum(len(q.relevant) >= 2 for q in hub.queries) >= 0.98 * len(hub.queries)


def test_mlqa_r_without_a_folder_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYQA_DATA_DIR", str(tmp_path))  # no release there
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        resolve_lareqa_dir("mlqa-r", None)


def test_lareqa_folder_defaults_to_polyqa_data_dir_then_the_hub_cache(tmp_path, monkeypatch):
    release = tmp_path / "data"
    (release / "mlqa-r").mkdir(parents=True)
    (release / "mlqa-r" / "en.json").write_text("{}")
    monkeypatch.setenv("POLYQA_DATA_DIR", str(release))
    monkeypatch.setenv("POLYQA_HOME", str(tmp_path / "home"))
    assert resolve_lareqa_dir("mlqa-r", None) == release / "mlqa-r"
    assert resolve_lareqa_dir("mlqa-r", "$POLYQA_DATA_DIR/mlqa-r") == release / "mlqa-r"
    # No local XQuAD-R: the hub copy, converted once into polyqa.paths.benchmarks_dir().
    converted = tmp_path / "home" / "benchmarks" / "google-research-datasets--xquad_r"
    converted.mkdir(parents=True)
    for code in ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"):
        (converted / f"{code}.json").write_text("{}")
    assert resolve_lareqa_dir("xquad-r", None) == converted
    # A local path that does not exist is reported as such, never looked up on the hub.
    with pytest.raises(FileNotFoundError, match="folder not found"):
        resolve_lareqa_dir("mlqa-r", str(tmp_path / "nowhere" / "mlqa-r"))
