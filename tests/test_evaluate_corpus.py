"""Evaluating on your own data: a polyqa corpus as a benchmark (held-out articles of the training corpus),
SQuAD-format folders without LAReQA sentence breaks, and a report that states every option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from corpus_fixtures import build_xquad_corpus, write_corpus, xquad_r_rows

from polyqa import languages as L
from polyqa.cli import main as polyqa_main
from polyqa.errors import PolyqaError
from polyqa.evaluate.benchmark import load_benchmark
from polyqa.evaluate.lareqa import load_lareqa
from polyqa.evaluate.report import heatmap_figure, model_label, render_markdown
from polyqa.sources.lareqa import answer_sentence

FIRST_ARTICLES = ["Super_Bowl_50", "Warsaw", "Normans"]  # the first 105 questions of XQuAD-R


@pytest.fixture(scope="module")
def xquad_corpus(tmp_path_factory, xquad_r_dir) -> Path:
    """The first three XQuAD-R articles as a corpus in en, de, zh; two Chinese answers unprojected."""
    rows = {L.normalize(lang): xquad_r_rows(xquad_r_dir, lang, 105) for lang in ("en", "de", "zh")}
    for lang_rows in rows.values():
        for row in lang_rows:
            # LAReQA's rule (start <= offset < end): an answer at a sentence's very end starts the next one.
            spans = [(s, s + len(t)) for s, t in zip(row["sentence_starts"], row["sentences"])]
            row["answer_sentence"] = answer_sentence(spans, row["answer_start"])
    for i in (0, 5):
        rows["zho_Hans"][i].update(answer_start=None, answer_sentence=None, answer_projection="none")
    return write_corpus(tmp_path_factory.mktemp("corpus") / "xq3", rows, num_shards=2)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, xquad_corpus) -> Path:
    from polyqa.corpus import reader
    from polyqa.tiny_encoder import build_tiny_encoder

    texts = []
    for lang in reader.corpus_languages(xquad_corpus):
        table = reader.read_language(xquad_corpus, lang, columns=["question", "passage"])
        texts += table.column("question").to_pylist() + table.column("passage").to_pylist()
    return build_tiny_encoder(texts, tmp_path_factory.mktemp("encoder"), vocab_size=1500, max_seq_length=64)


def _relevant_texts(bench) -> dict[tuple[str, str], set[tuple[str, str]]]:
    return {(q.qid, q.language): {(bench.candidates[i].language, bench.candidates[i].text) for i in q.relevant}
            for q in bench.queries}


def test_a_corpus_is_the_lareqa_protocol_over_its_own_rows(xquad_corpus, xquad_r_dir):
    """Built from XQuAD-R, the corpus benchmark has XQuAD-R's candidates and relevance on the same articles."""
    bench = load_benchmark("polyqa-corpus", xquad_corpus)
    reference = load_lareqa(xquad_r_dir, "xquad-r", ["en", "de", "zh"], titles=set(FIRST_ARTICLES))
    assert bench.name == "polyqa-corpus" and bench.languages == ["deu_Latn", "eng_Latn", "zho_Hans"]
    assert bench.data_dir == str(xquad_corpus.resolve())
    # Candidates: every sentence of every passage, once per language.
    assert sorted((c.language, c.text) for c in bench.candidates) == sorted(
        (c.language, c.text) for c in reference.candidates)
    assert all(c.context for c in bench.candidates)
    # Relevant: the answer sentence in every language that has one.
    ours, theirs = _relevant_texts(bench), _relevant_texts(reference)
    assert len(ours) == 3 * 105 and set(ours) == set(theirs)
    zh_unprojected = {q.qid for q in bench.queries if q.language == L.normalize("zh")
                      and not any(bench.candidates[i].language == "zho_Hans" for i in q.relevant)}
    assert len(zh_unprojected) == 2
    for key, texts in ours.items():
        if key[0] in zh_unprojected:  # no Chinese answer sentence: relevant in the two other languages
            assert texts == {t for t in theirs[key] if t[0] != "zho_Hans"} and len(texts) == 2
        else:
            assert texts == theirs[key]
    assert bench.quarantine == []


def test_corpus_benchmark_filters_titles_languages_and_max_questions(xquad_corpus, tmp_path):
    held = load_benchmark("polyqa-corpus", xquad_corpus, titles={"Warsaw"}, languages=["en", "de"])
    assert {q.title for q in held.queries} == {c.title for c in held.candidates} == {"Warsaw"}
    assert held.languages == ["eng_Latn", "deu_Latn"] and len(held.queries) == 2 * 23
    rest = load_benchmark("polyqa-corpus", xquad_corpus, exclude_titles={"Warsaw"})
    assert "Warsaw" not in {q.title for q in rest.queries} and len(rest.queries) == 3 * (105 - 23)
    small = load_benchmark("polyqa-corpus", xquad_corpus, max_questions=4)
    assert len({q.qid for q in small.queries}) == 4 and len(small.queries) == 12
    with pytest.raises(PolyqaError, match="no questions left"):
        load_benchmark("polyqa-corpus", xquad_corpus, titles={"Not_An_Article"})
    with pytest.raises(PolyqaError, match=r"\['spa_Latn'\] not in the corpus"):
        load_benchmark("polyqa-corpus", xquad_corpus, languages=["es"])
    with pytest.raises(PolyqaError, match="not a polyqa corpus"):
        load_benchmark("polyqa-corpus", tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(PolyqaError, match="a file where a corpus folder is expected"):
        load_benchmark("polyqa-corpus", tmp_path / "file")


def test_corpus_benchmark_quarantines_qa_ids_without_any_answer_sentence(tmp_path, xquad_r_dir):
    corpus = build_xquad_corpus(xquad_r_dir, tmp_path / "c", langs=("en", "de"), limit=10,
                                unprojected={"en": [3], "de": [3]})
    bench = load_benchmark("polyqa-corpus", corpus)
    assert len(bench.queries) == 2 * 9
    assert [q["reason"] for q in bench.quarantine] == ["no answer sentence in any language"]


def test_train_leaving_articles_out_then_evaluate_on_them_from_the_command_line(xquad_corpus, encoder, tmp_path,
                                                                                 capsys):
    """The held-out recipe: train with heldout_fraction, evaluate with --articles-file on the same corpus."""
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "corpus": str(xquad_corpus), "output_dir": str(tmp_path / "run"), "base_model": str(encoder),
        "batch_size": 8, "max_steps": 2, "max_seq_length": 32, "heldout_fraction": 0.34, "heldout_seed": 1}))
    assert polyqa_main(["train", "--config", str(config)]) == 0
    heldout_file = tmp_path / "run" / "heldout_articles.txt"
    heldout = heldout_file.read_text().split()
    assert len(heldout) == 1 and set(heldout) <= set(FIRST_ARTICLES)
    record = json.loads((tmp_path / "run" / "run_record.json").read_text())
    per_article = {"Super_Bowl_50": 74, "Warsaw": 23, "Normans": 8}
    for lang in ("eng_Latn", "deu_Latn", "zho_Hans"):
        assert record["skipped_rows"][lang]["held_out_article"] == per_article[heldout[0]]
    info = json.loads((tmp_path / "run" / "model" / "polyqa_training.json").read_text())
    assert info["heldout_articles_file"] == str(heldout_file.resolve()) and info["heldout_articles"] == 1

    out = tmp_path / "eval" / "heldout.json"
    argv = ["evaluate", "--model", str(tmp_path / "run" / "model"), "--benchmark", "polyqa-corpus",
            "--data-dir", str(xquad_corpus), "--articles-file", str(heldout_file), "--output", str(out),
            "--candidates", "sentence"]
    capsys.readouterr()
    assert polyqa_main(argv) == 0
    result = json.loads(out.read_text())
    assert result["counts"]["question_ids"] == per_article[heldout[0]]
    assert result["filters"]["articles"] == 1 and result["data_dir"] == str(xquad_corpus.resolve())
    assert result["seen_unseen"]["seen"] == result["languages"]  # trained on every corpus language
    assert 0 < result["settings"]["multilingual"]["mAP"] <= 1
    md = out.with_suffix(".md").read_text()
    assert str(heldout_file) in md and "(1 titles)" in md and str(xquad_corpus.resolve()) in md


def _strip_breaks(xquad_r_dir: Path, folder: Path, langs=("en", "de"), articles: int = 2) -> Path:
    """Plain SQuAD v1.1 files (no sentences / sentence_breaks), as XQuAD is released."""
    folder.mkdir(parents=True)
    for lang in langs:
        doc = json.loads((xquad_r_dir / f"{lang}.json").read_text(encoding="utf-8"))
        doc["data"] = doc["data"][:articles]
        for article in doc["data"]:
            for paragraph in article["paragraphs"]:
                del paragraph["sentences"], paragraph["sentence_breaks"]
        (folder / f"{lang}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return folder


def test_squad_files_without_sentence_breaks_are_segmented_by_polyqa(xquad_r_dir, tmp_path, encoder):
    folder = _strip_breaks(xquad_r_dir, tmp_path / "plain")
    bench = load_benchmark("lareqa", folder)
    reference = load_lareqa(xquad_r_dir, "xquad-r", ["de", "en"], titles={"Super_Bowl_50", "Warsaw"})
    assert bench.stats["segmented_paragraphs"] == 2 * 10
    assert reference.stats["segmented_paragraphs"] == 0
    assert {q.qid for q in bench.queries} == {q.qid for q in reference.queries}
    # The relevant candidate in each language holds the answer (polyqa's own sentence split).
    answers = {}
    for lang in ("en", "de"):
        for article in json.loads((folder / f"{lang}.json").read_text())["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    answers[(qa["id"], L.normalize(lang))] = qa["answers"][0]["text"]
    for q in bench.queries:
        for i in q.relevant:
            c = bench.candidates[i]
            assert answers[(q.qid, c.language)] in c.text or c.text in answers[(q.qid, c.language)]
    # The same folder works as xquad-r too, and through the command line.
    assert len(load_benchmark("xquad-r", folder).queries) == len(bench.queries)
    out = tmp_path / "plain.json"
    assert polyqa_main(["evaluate", "--model", str(encoder), "--benchmark", "lareqa", "--data-dir", str(folder),
                        "--output", str(out), "--max-questions", "5"]) == 0
    assert json.loads(out.read_text())["counts"]["segmented_paragraphs"] == 20


def test_a_half_segmented_paragraph_is_a_format_error(xquad_r_dir, tmp_path):
    folder = _strip_breaks(xquad_r_dir, tmp_path / "plain", langs=("en",), articles=1)
    doc = json.loads((folder / "en.json").read_text())
    doc["data"][0]["paragraphs"][1]["sentences"] = ["only one of the two fields"]
    (folder / "en.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"en\.json: data\[0\]\.paragraphs\[1\]: missing field 'sentence_breaks'"):
        load_benchmark("lareqa", folder)


def _result(model: str, model_path: str, languages: list[str]) -> dict:
    per = {lang: 0.5 for lang in languages}
    pairs = {q: {c: 0.4 for c in languages if c != q} for q in languages}
    return {
        "benchmark": "polyqa-corpus", "data_dir": "/data/my-corpus", "model": model, "model_path": model_path,
        "candidates": "sentence", "candidate_text": "as is", "query_prompt": "", "passage_prompt": "",
        "languages": languages, "languages_requested": ["en", "de"], "source_codes": {},
        "filters": {"max_questions": 7, "articles_file": "/data/heldout.txt", "articles": 3,
                    "exclude_titles_file": None, "split": None},
        "counts": {"queries": 14, "candidates": 60, "quarantined": 0}, "timings": {},
        "settings": {"monolingual": {"mAP": 0.5, "per_language": per, "recall_per_language":
                                     {"R@1": per, "R@10": per}},
                     "cross-lingual": {"mAP": 0.4, "per_pair": pairs},
                     "multilingual": {"mAP": 0.45, "per_language": per,
                                      "recall_per_language": {"R@1": per, "R@10": per}}},
        "rank_distance": {"mean": 3.0, "per_language": per}, "seen_unseen": None,
        "device": "cpu", "batch_size": 64,
    }


def test_the_markdown_report_states_every_option_that_shaped_the_result(tmp_path):
    model_dir = tmp_path / "runs" / "hybrid" / "model"
    model_dir.mkdir(parents=True)
    md = render_markdown(_result(str(model_dir), str(model_dir), ["eng_Latn", "deu_Latn"]))
    settings = md.split("## Settings")[1].split("## Summary")[0]
    for needed in ("benchmark: `polyqa-corpus`", "data folder: `/data/my-corpus`", f"model: `{model_dir}`",
                   "articles file: `/data/heldout.txt` (3 titles)", "languages: `eng_Latn`, `deu_Latn`",
                   "candidates: `sentence`", "max questions: 7", "batch size 64"):
        assert needed in settings, needed
    assert md.startswith(f"# polyqa-corpus zero-shot retrieval: `{model_dir}`")
    # An alias is named as given, with the folder it resolves to.
    from polyqa.encoders import resolve_encoder

    md = render_markdown(_result("minilm", resolve_encoder("minilm"), ["eng_Latn", "deu_Latn"]))
    assert "model: `minilm` (loaded from `" in md and "articles file:" in md


@pytest.mark.parametrize("n_languages", [2, 11])
def test_the_heatmap_title_fits_and_names_the_model_by_its_full_path(tmp_path, n_languages):
    model_dir = tmp_path / "a-rather-long-folder-name-for-experiments" / "xlmr-hybrid-alpha0.5-seed3" / "model"
    model_dir.mkdir(parents=True)
    langs = list(L.NLLB_CODES[:n_languages])
    result = _result(str(model_dir), str(model_dir), langs)
    fig = heatmap_figure(result)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle
    box = title.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y0 >= 0 and box.y1 <= fig.bbox.height, box
    # Nothing else overlaps it: the axes (and their tick labels) sit below the title.
    assert fig.axes[0].get_tightbbox(renderer).y1 <= box.y0 + 1
    assert str(model_dir) in title.get_text().replace("\n", "")
    assert model_label(_result("minilm", "/site-packages/minilm", langs)) == "minilm"
