"""End to end: a tiny random BERT encoder (built here), the CLI on an XQuAD-R subset, MLQA-R and MIRACL
fixtures, the embedding cache, and the Prefect flow under the test harness.

Every metric the CLI writes is recomputed here independently (our own encoding
of the texts, scikit-learn for AP / nDCG) and compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, ndcg_score

from polyqa.cli import main as polyqa_main
from polyqa.encoders import resolve_encoder
from polyqa.evaluate.lareqa import load_lareqa
from polyqa.evaluate.miracl import load_miracl
from polyqa.evaluate.retrieval import Encoder
from polyqa.evaluate.run import EvaluationConfig, run_evaluation

FIXTURES = Path(__file__).parent / "fixtures"
LANGS = ["en", "de", "zh"]
MAX_Q = 40
ARTICLES = ["Super_Bowl_50", "Warsaw", "Normans", "Nikola_Tesla"]  # candidates: every sentence of these


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, xquad_r_dir) -> Path:
    """A random 2-layer BERT (hidden 32) with a WordPiece vocab trained on the data, saved as a SentenceTransformer."""
    from polyqa.tiny_encoder import build_tiny_encoder

    texts = []
    for lang in LANGS:
        doc = json.loads((xquad_r_dir / f"{lang}.json").read_text(encoding="utf-8"))
        for article in doc["data"][:10]:
            for para in article["paragraphs"]:
                texts.append(para["context"])
                texts += [qa["question"] for qa in para["qas"]]
    for path in (FIXTURES / "mlqa-r").glob("*.json"):
        texts.append(path.read_text(encoding="utf-8"))
    folder = build_tiny_encoder(texts, tmp_path_factory.mktemp("tiny-encoder"), vocab_size=2000)
    from transformers import AutoTokenizer

    assert "[UNK]" not in AutoTokenizer.from_pretrained(folder.parent / "hf").tokenize("the river")
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_encoder_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_encoder_dir), device="cpu")


@pytest.fixture(scope="session")
def trained_model_dir(tiny_encoder_dir, tmp_path_factory) -> Path:
    """The tiny encoder with a training record: trained on English and German only."""
    import shutil

    folder = tmp_path_factory.mktemp("trained") / "model"
    shutil.copytree(tiny_encoder_dir, folder)
    (folder / "polyqa_training.json").write_text(json.dumps({"languages": ["eng_Latn", "deu_Latn"]}))
    return folder


@pytest.fixture(scope="session")
def cli_run(trained_model_dir, xquad_r_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "xq.json"
    articles = out.with_name("articles.txt")
    articles.write_text("\n".join(ARTICLES) + "\n")
    argv = ["evaluate", "--model", str(trained_model_dir), "--benchmark", "xquad-r", "--data-dir", str(xquad_r_dir),
            "--output", str(out), "--languages", ",".join(LANGS), "--max-questions", str(MAX_Q),
            "--candidates", "sentence+context", "--batch-size", "128", "--chunk-size", "50",
            "--articles-file", str(articles)]
    assert polyqa_main(argv) == 0
    return out, argv


def _ap_by_hand(q_emb, c_emb, relevant_mask):
    scores = q_emb @ c_emb.T
    return np.array([average_precision_score(relevant_mask[i], scores[i]) for i in range(len(q_emb))])


def test_cli_xquad_subset_matches_independent_computation(cli_run, tiny_model, xquad_r_dir):
    out, _ = cli_run
    result = json.loads(out.read_text())
    assert result["benchmark"] == "xquad-r" and result["candidates"] == "sentence+context"
    assert result["languages"] == ["eng_Latn", "deu_Latn", "zho_Hans"]
    assert result["counts"]["queries"] == 3 * MAX_Q
    settings = result["settings"]
    assert set(settings) == {"monolingual", "cross-lingual", "multilingual"}
    assert len([1 for row in settings["cross-lingual"]["per_pair"].values() for _ in row]) == 6
    assert result["timings"]["unique_texts_encoded"] <= result["timings"]["texts"]

    # Independent recomputation: our own texts and encoding, sklearn's AP.
    bench = load_lareqa(xquad_r_dir, "xquad-r", LANGS, titles=set(ARTICLES), max_questions=MAX_Q)
    assert {c.title for c in bench.candidates} == set(ARTICLES)
    cand_texts = [f"{c.text} [SEP] {c.context}" for c in bench.candidates]
    c_emb = tiny_model.encode(cand_texts, normalize_embeddings=True, batch_size=128)
    q_emb = tiny_model.encode([q.text for q in bench.queries], normalize_embeddings=True, batch_size=128)
    c_lang = np.array([c.language for c in bench.candidates])
    q_lang = np.array([q.language for q in bench.queries])
    rel = np.zeros((len(bench.queries), len(bench.candidates)), dtype=bool)
    for i, q in enumerate(bench.queries):
        rel[i, list(q.relevant)] = True
    multi = _ap_by_hand(q_emb, c_emb, rel)
    for lang in result["languages"]:
        sel = q_lang == lang
        assert settings["multilingual"]["per_language"][lang] == pytest.approx(multi[sel].mean(), abs=2e-4)
        block = c_lang == lang
        mono = _ap_by_hand(q_emb[sel], c_emb[block], rel[sel][:, block])
        assert settings["monolingual"]["per_language"][lang] == pytest.approx(mono.mean(), abs=2e-4)
    sel, block = q_lang == "zho_Hans", c_lang == "eng_Latn"
    cross = _ap_by_hand(q_emb[sel], c_emb[block], rel[sel][:, block])
    assert settings["cross-lingual"]["per_pair"]["zho_Hans"]["eng_Latn"] == pytest.approx(cross.mean(), abs=2e-4)
    pairs = [v for row in settings["cross-lingual"]["per_pair"].values() for v in row.values()]
    assert settings["cross-lingual"]["mAP"] == pytest.approx(np.mean(pairs))
    # Rank distance: 3 relevant candidates per query (one per language).
    assert result["rank_distance"]["queries"] == 3 * MAX_Q
    assert 0 <= result["rank_distance"]["mean"] < len(bench.candidates)


def test_cli_outputs_and_seen_unseen_split(cli_run):
    out, _ = cli_run
    result = json.loads(out.read_text())
    su = result["seen_unseen"]
    assert su["seen"] == ["eng_Latn", "deu_Latn"] and su["unseen"] == ["zho_Hans"]
    mono = result["settings"]["monolingual"]["per_language"]
    assert su["monolingual"]["unseen"] == pytest.approx(mono["zho_Hans"])
    assert su["monolingual"]["seen"] == pytest.approx((mono["eng_Latn"] + mono["deu_Latn"]) / 2)
    assert su["cross-lingual"]["unseen->unseen"] is None  # a single unseen language has no pair
    md = out.with_suffix(".md").read_text()
    assert "| multilingual |" in md and "Cross-lingual mAP" in md and "Seen vs unseen" in md
    png = out.with_name("xq.heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_cli_rerun_resumes_from_embedding_cache(cli_run):
    out, argv = cli_run
    first = json.loads(out.read_text())
    second_out = out.with_name("xq-again.json")
    argv = list(argv)
    argv[argv.index("--output") + 1] = str(second_out)
    argv += ["--cache-dir", str(out.with_suffix(".embcache"))]
    assert polyqa_main(argv) == 0
    second = json.loads(second_out.read_text())
    assert second["timings"]["from_cache"] == first["timings"]["unique_texts_encoded"] > 0
    assert second["settings"]["multilingual"]["mAP"] == first["settings"]["multilingual"]["mAP"]


def test_encoder_encodes_each_unique_text_once(tiny_model):
    encoder = Encoder(tiny_model, "tiny", batch_size=8)
    texts = ["a river", "the city", "a river", "the city", "tea"]
    emb = encoder.encode(texts)
    assert emb.shape == (5, 32) and encoder.stats.unique_texts == 3
    np.testing.assert_array_equal(emb[0], emb[2])
    encoder.encode(["tea", "moon"])  # "tea" comes from the in-run cache
    assert encoder.stats.unique_texts == 4
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_articles_file_sentence_mode_and_prompts(tiny_encoder_dir, xquad_r_dir, tmp_path):
    titles = tmp_path / "held_out.json"
    titles.write_text(json.dumps(["Warsaw"]))
    result = run_evaluation(EvaluationConfig(
        model=str(tiny_encoder_dir), benchmark="xquad-r", data_dir=str(xquad_r_dir), output=str(tmp_path / "w.json"),
        candidates="sentence", languages=["el", "en"], articles_file=str(titles),
        query_prompt="query: ", passage_prompt="passage: ",
    ))
    assert result["candidates"] == "sentence" and result["query_prompt"] == "query: "
    assert result["seen_unseen"] is None  # no training record next to this model
    warsaw = load_lareqa(xquad_r_dir, "xquad-r", ["el", "en"], titles={"Warsaw"})
    assert result["counts"]["queries"] == len(warsaw.queries) > 0
    assert result["counts"]["candidates"] == len(warsaw.candidates)


def test_mlqa_r_partial_languages_end_to_end(tiny_encoder_dir, tmp_path):
    result = run_evaluation(EvaluationConfig(
        model=str(tiny_encoder_dir), benchmark="mlqa-r", data_dir=str(FIXTURES / "mlqa-r"),
        output=str(tmp_path / "ml.json"), candidates="sentence+context",
    ))
    per_pair = result["settings"]["cross-lingual"]["per_pair"]
    # es and de share no question id: that pair is undefined, not zero.
    assert per_pair["spa_Latn"]["deu_Latn"] is None and per_pair["deu_Latn"]["spa_Latn"] is None
    assert per_pair["eng_Latn"]["deu_Latn"] is not None
    # Queries with two or more relevant candidates: m1 en/de, m2 en/es, m3 en/de, m4 en/es -> 8 of 9.
    assert result["rank_distance"]["queries"] == 8
    assert result["counts"]["quarantined"] == 1
    assert (tmp_path / "ml.heatmap.png").exists()


def _miracl_files(root, code):
    """A language's MIRACL files read directly: ({docid: passage text}, {qid: query}, {qid: {docid: gain}})."""
    import gzip

    passages = {}
    for path in sorted(root.rglob(f"miracl-corpus-v1.0-{code}/*.jsonl*")):
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                passages.setdefault(row["docid"], f"{row['title']} {row['text']}".strip())
    topics = dict(line.split("\t", 1) for line in
                  next(root.rglob(f"topics.miracl-v1.0-{code}-dev.tsv")).read_text().splitlines())
    qrels = {}
    for line in next(root.rglob(f"qrels.miracl-v1.0-{code}-dev.tsv")).read_text().split("\n"):
        if line.strip():
            qid, _, docid, rel = line.split()
            if float(rel) > 0 and docid in passages:
                qrels.setdefault(qid, {})[docid] = float(rel)
    return passages, topics, qrels


def test_miracl_end_to_end_matches_sklearn(tiny_encoder_dir, tiny_model, tmp_path):
    out = tmp_path / "miracl.json"
    assert polyqa_main(["evaluate", "--model", str(tiny_encoder_dir), "--benchmark", "miracl",
                        "--data-dir", str(FIXTURES / "miracl"), "--output", str(out), "--no-cache"]) == 0
    result = json.loads(out.read_text())
    # The reference scores every passage of each corpus at once, read from the files themselves.
    for code, lang in (("de", "deu_Latn"), ("en", "eng_Latn")):
        passages, topics, qrels = _miracl_files(FIXTURES / "miracl", code)
        ids = list(passages)
        c_emb = tiny_model.encode([passages[i] for i in ids], normalize_embeddings=True)
        values = []
        for qid, gains_of in qrels.items():
            gains = np.array([gains_of.get(i, 0.0) for i in ids])
            scores = c_emb @ tiny_model.encode(topics[qid].strip(), normalize_embeddings=True)
            values.append(ndcg_score(gains[None], scores[None], k=10))
        got = result["settings"]["monolingual"]["per_language"][lang]
        assert got["queries"] == len(qrels)
        assert got["nDCG@10"] == pytest.approx(np.mean(values), abs=2e-4)
        assert got["Recall@100"] == 1.0  # corpora smaller than 100 documents
        assert result["counts"]["candidates_per_language"][lang] == len(passages)
    assert result["rank_distance"] is None
    assert "nDCG@10" in out.with_suffix(".md").read_text()


def test_cli_reports_bad_language(tiny_encoder_dir, tmp_path, capsys):
    code = polyqa_main(["evaluate", "--model", str(tiny_encoder_dir), "--benchmark", "mlqa-r",
                        "--data-dir", str(FIXTURES / "mlqa-r"), "--output", str(tmp_path / "x.json"),
                        "--languages", "en,hi"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "hin_Deva" in err and "Traceback" not in err


def test_minilm_alias_points_at_the_bundled_model():
    path = Path(resolve_encoder("minilm"))
    assert (path / "modules.json").exists() and (path / "model.safetensors").exists()
    assert resolve_encoder("some/hub-id") == "some/hub-id"


def test_prefect_flow_under_test_harness(tiny_encoder_dir, tmp_path, prefect_harness):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
    try:
        from evaluate_retriever import evaluate_retriever
    finally:
        sys.path.pop(0)
    result = evaluate_retriever(model=str(tiny_encoder_dir), benchmark="mlqa-r",
                                data_dir=str(FIXTURES / "mlqa-r"), output=str(tmp_path / "flow.json"),
                                languages=["en", "de"])
    assert result["languages"] == ["eng_Latn", "deu_Latn"]
    assert any((tmp_path / "flow.embcache").iterdir())  # the CLI's default cache: a retried encode resumes
    on_disk = json.loads((tmp_path / "flow.json").read_text())
    assert on_disk["settings"]["multilingual"]["mAP"] == result["settings"]["multilingual"]["mAP"]
    # the run's page shows the results: a table and the report, read back through the Prefect client
    from prefect_artifacts import latest_artifact

    table = latest_artifact("evaluation-results")
    assert table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    multilingual = next(r for r in rows if r["setting"] == "multilingual")
    assert multilingual["mAP"] == round(result["settings"]["multilingual"]["mAP"], 4)
    report = latest_artifact("evaluation-report")
    assert report.type == "markdown" and "## Settings" in report.data
