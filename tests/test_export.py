"""Exports read by the real consumers (BEIR, pytrec_eval, sentence-transformers, FlagEmbedding), mined
negatives, and the export's rules (validated corpus, one writer, nothing of the user's touched).

The corpus is what a user's first build gives: the embedded default sample machine translated by the
tiny NLLB model, in several aligned shards. Its translations are random babble that fails every
quality check, so most exports here turn the quality filter off (one test shows what it leaves out).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from polyqa.corpus.job import build_corpus
from polyqa.errors import ConfigError, PolyqaError
from polyqa.export import ExportConfig, ExportJob
from polyqa.export.mining import MinedNegatives, MinerSettings, mine_negatives

LANGS = ["eng_Latn", "deu_Latn", "spa_Latn"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_model) -> Path:
    root = tmp_path_factory.mktemp("export-corpus")
    config = {
        "name": "export-test", "languages": ["de", "es"], "shard_rows": 40, "model": "tiny",
        "tiny_model_dir": str(tiny_model.hf_dir.parent), "cache": str(root / "cache.sqlite"),
        "decoding": {"beam_size": 1, "max_length_extra": 4}, "card_dir": None,
    }
    build_corpus(config, root / "corpus")
    return root / "corpus"


@pytest.fixture(scope="module")
def mined(corpus, tmp_path_factory) -> MinedNegatives:
    out = tmp_path_factory.mktemp("mined") / "negatives"
    return mine_negatives(corpus, out, MinerSettings(model="minilm", num_negatives=2, range_max=30), device="cpu")


def export(corpus: Path, output: Path, fmt: str, **settings):
    settings.setdefault("quality_filter", False)
    return ExportJob(ExportConfig.build(corpus=str(corpus), output=str(output), format=fmt, **settings)).run()


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def rows(corpus: Path, lang: str) -> list[dict]:
    from polyqa.corpus.reader import read_language

    return read_language(corpus, lang).to_pylist()


# --------------------------------------------------------------------------- mined negatives


def test_mined_negatives_are_stored_by_id_and_are_never_the_positive_its_translation_or_the_answer(corpus, mined):
    assert mined.verify() is None and set(mined.languages) == set(LANGS)
    assert mined.description["passages_encoded_per_second"] > 0
    for lang in LANGS:
        table = mined.table(lang).to_pylist()
        corpus_rows = rows(corpus, lang)
        assert [r["qa_id"] for r in table] == [r["qa_id"] for r in corpus_rows]  # aligned with the corpus
        passages = {r["passage_id"]: r["passage"] for r in corpus_rows}
        with_negatives = 0
        for neg, row in zip(table, corpus_rows):
            assert len(neg["negative_passage_ids"]) <= 2
            assert row["passage_id"] not in neg["negative_passage_ids"]  # not the positive, in no language
            for pid, score in zip(neg["negative_passage_ids"], neg["negative_scores"]):
                assert passages[pid] != row["passage"]
                if row["answer_text"].strip():
                    assert row["answer_text"].casefold() not in passages[pid].casefold()
                assert score <= neg["positive_score"] * 0.95 + 1e-6  # the relative margin
            assert neg["negative_scores"] == sorted(neg["negative_scores"], reverse=True)
            with_negatives += bool(neg["negative_passage_ids"])
        assert with_negatives > len(table) / 2


def test_mining_again_with_the_same_settings_reuses_the_files(corpus, mined):
    messages = []
    again = mine_negatives(corpus, mined.folder, MinerSettings(model="minilm", num_negatives=2, range_max=30),
                           progress=messages.append)
    assert again.description == mined.description
    assert any("up to date" in m for m in messages)


# --------------------------------------------------------------------------- consumers


def test_beir_export_loads_in_beir_and_pytrec_eval_agrees_with_polyqa_evaluate(corpus, tmp_path):
    import pytrec_eval
    from beir.datasets.data_loader import GenericDataLoader

    result = export(corpus, tmp_path / "beir", "beir", heldout_fraction=0.3, seed=1)
    heldout = {line for line in (tmp_path / "beir" / "heldout_articles.txt").read_text("utf-8").splitlines()
               if line and not line.startswith("#")}
    assert len(heldout) == result.manifest["heldout_articles"] > 0
    english = rows(corpus, "eng_Latn")
    n_heldout_rows = sum(r["title"] in heldout for r in english)
    for lang in LANGS:
        folder = tmp_path / "beir" / "beir" / lang
        docs, queries, qrels = GenericDataLoader(str(folder)).load(split="test")
        assert len(queries) == len(qrels) == result.manifest["counts"][f"{lang}-{lang}"] == n_heldout_rows
        assert all(d.startswith(f"{lang}/") for d in docs)
        assert all(set(rel) <= set(docs) for rel in qrels.values())
    docs, queries, qrels = GenericDataLoader(str(tmp_path / "beir" / "beir" / "cross-deu_Latn")).load(split="test")
    assert {d.split("/")[0] for d in docs} == set(LANGS)
    assert all({d.split("/")[0] for d in rel} == set(LANGS) for rel in qrels.values())  # relevant in every language

    # polyqa evaluate on the German folder, its run scored by pytrec_eval with the export's qrels
    folder = tmp_path / "beir" / "beir" / "deu_Latn"
    from polyqa.cli import main

    assert main(["evaluate", "--model", "minilm", "--benchmark", "beir", "--data-dir", str(folder), "--output",
                 str(tmp_path / "eval.json"), "--no-cache", "--run-file", str(tmp_path / "run.trec")]) == 0
    polyqa_result = json.loads((tmp_path / "eval.json").read_text("utf-8"))
    run: dict[str, dict[str, float]] = {}
    for line in (tmp_path / "run.trec").read_text().splitlines():
        qid, _, docid, _, score, _ = line.split()
        run.setdefault(qid, {})[docid] = float(score)
    _, _, qrels = GenericDataLoader(str(folder)).load(split="test")
    measures = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    ndcg = sum(m["ndcg_cut_10"] for m in measures.values()) / len(measures)
    recall = sum(m["recall_100"] for m in measures.values()) / len(measures)
    mono = polyqa_result["settings"]["monolingual"]
    assert len(measures) == len(qrels)
    assert math.isclose(mono["nDCG@10"], ndcg, abs_tol=1e-6)
    assert math.isclose(mono["Recall@100"], recall, abs_tol=1e-6)


def test_sentence_transformers_trains_two_steps_on_the_export_with_its_negative_columns(corpus, mined, tmp_path):
    from datasets import load_dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses

    from polyqa.encoders import load_sentence_transformer

    result = export(corpus, tmp_path / "st", "sentence-transformers", negatives=str(mined.folder),
                    num_negatives=2, heldout_fraction=0.3)
    pairs = result.manifest["counts"]
    assert set(pairs) == {f"{x}-{y}" for x in LANGS for y in LANGS}
    train = load_dataset(str(tmp_path / "st"), "eng_Latn-deu_Latn", split="train")
    assert train.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert len(train) == pairs["eng_Latn-deu_Latn"] > 0
    heldout = set((tmp_path / "st" / "heldout_articles.txt").read_text("utf-8").splitlines()[1:])
    german = {r["passage"]: r["title"] for r in rows(corpus, "deu_Latn")}
    english_questions = {r["question"] for r in rows(corpus, "eng_Latn")}
    for example in train:
        assert example["anchor"] in english_questions  # query in x, positive and negatives in y
        assert german[example["positive"]] not in heldout
        assert example["negative_1"] in german and example["negative_2"] in german
        assert example["positive"] not in (example["negative_1"], example["negative_2"])
    model = load_sentence_transformer("minilm", device="cpu")
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "run"), max_steps=2,
                                                per_device_train_batch_size=4, report_to=[], save_strategy="no",
                                                use_cpu=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train,
                                         loss=losses.MultipleNegativesRankingLoss(model))
    output = trainer.train()
    assert trainer.state.global_step == 2 and math.isfinite(output.training_loss)


def test_flagembedding_training_data_reads_the_export(corpus, mined, tmp_path):
    from FlagEmbedding.abc.finetune.embedder import AbsEmbedderDataArguments, AbsEmbedderTrainDataset
    from transformers import AutoTokenizer

    from polyqa.encoders import resolve_encoder

    result = export(corpus, tmp_path / "flag", "flagembedding", negatives=str(mined.folder), num_negatives=2,
                    keep_scores=True, query_prompt="Represent this question for retrieving passages: ",
                    pairs="x-x")
    folder = tmp_path / "flag" / "flagembedding"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{x}-{x}.jsonl" for x in LANGS)
    first = jsonl(folder / "deu_Latn-deu_Latn.jsonl")[0]
    assert set(first) == {"query", "pos", "neg", "pos_scores", "neg_scores", "prompt"}
    assert len(first["neg"]) == len(first["neg_scores"]) == 2 and len(first["pos_scores"]) == 1
    args = AbsEmbedderDataArguments(train_data=[str(folder)], train_group_size=3, knowledge_distillation=True,
                                    query_instruction_for_retrieval="unused: {}", query_instruction_format="{}{}")
    dataset = AbsEmbedderTrainDataset(args, AutoTokenizer.from_pretrained(resolve_encoder("minilm")))
    assert len(dataset) == sum(result.manifest["counts"].values())
    query, passages, teacher_scores = dataset[0]
    assert query.startswith("Represent this question") and len(passages) == 3 and len(teacher_scores) == 3


def test_tevatron_export_follows_its_schema_and_names_only_documents_of_its_corpus(corpus, mined, tmp_path):
    export(corpus, tmp_path / "tev", "tevatron", negatives=str(mined.folder), num_negatives=2, pairs="x-y")
    folder = tmp_path / "tev" / "tevatron"
    docs = {d["docid"]: d for d in jsonl(folder / "corpus.jsonl")}
    assert all(set(d) == {"docid", "title", "text"} for d in docs.values())
    trains = sorted(folder.glob("*/train.jsonl"))
    assert len(trains) == len(LANGS) * (len(LANGS) - 1)
    for path in trains:
        x, y = path.parent.name.split("-", 1)
        for row in jsonl(path):
            assert set(row) == {"query_id", "query", "positive_passages", "negative_passages"}
            assert row["query_id"].startswith(f"{x}/")
            for passage in row["positive_passages"] + row["negative_passages"]:
                assert set(passage) == {"docid", "title", "text"}
                assert passage["docid"] in docs and passage["docid"].startswith(f"{y}/")  # the positive's language
                assert docs[passage["docid"]]["text"] == passage["text"]


# --------------------------------------------------------------------------- rows left out, reruns, refusals


def test_rows_left_out_are_counted_with_their_reason(corpus, tmp_path):
    result = export(corpus, tmp_path / "q", "flagembedding", quality_filter=True, positive="sentence")
    left = result.manifest["left_out"]
    n = len(rows(corpus, "eng_Latn"))
    translated_failing = sum(not r["quality_pass"] for r in rows(corpus, "deu_Latn"))
    assert left["deu_Latn"]["quality_pass_false"] == translated_failing > 0
    kept = result.manifest["counts"]["eng_Latn-eng_Latn"]
    assert kept + sum(left.get("eng_Latn", {}).values()) == n
    card = (tmp_path / "q" / "README.md").read_text("utf-8")
    assert "quality_pass_false" in card and "## Left out" in card


def test_an_unchanged_export_is_up_to_date_and_a_changed_one_replaces_only_polyqas_files(corpus, tmp_path):
    out = tmp_path / "out"
    first = export(corpus, out, "beir")
    assert not first.up_to_date
    assert export(corpus, out, "beir").up_to_date
    (out / "notes.txt").write_text("mine")  # a file of the user's, beside polyqa's
    changed = export(corpus, out, "beir", languages=["en", "de"])
    assert not changed.up_to_date and not (out / "beir" / "spa_Latn").exists()
    assert (out / "notes.txt").read_text() == "mine"


def test_an_export_into_a_folder_of_the_users_is_refused_and_changes_nothing(corpus, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.txt").write_text("keep")
    with pytest.raises(PolyqaError, match="files polyqa did not write"):
        export(corpus, tmp_path / "mine", "beir")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["data.txt"]


def test_a_second_writer_of_the_same_export_is_refused(corpus, tmp_path):
    from polyqa.locking import OutputLock, OutputLockedError

    (tmp_path / "held").mkdir()
    with OutputLock(tmp_path / "held", "another export"):
        with pytest.raises(OutputLockedError):
            export(corpus, tmp_path / "held", "beir")


def test_a_corpus_that_fails_validation_is_refused_with_the_validations_message(corpus, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(corpus, broken)
    shard = sorted((broken / "lang=deu_Latn").glob("*.arrow"))[0]
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(PolyqaError, match="does not pass polyqa validate.*sha256|does not pass polyqa validate"):
        export(broken, tmp_path / "x", "beir")
    assert not (tmp_path / "x").exists()


def test_held_out_titles_not_in_the_corpus_are_named(corpus, tmp_path):
    titles = tmp_path / "heldout.txt"
    titles.write_text("Lighthouses\nNo Such Article\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'No Such Article'"):
        export(corpus, tmp_path / "x", "beir", heldout_titles_file=str(titles))


def test_invalid_export_settings_name_the_setting():
    with pytest.raises(ConfigError, match="num_negatives"):
        ExportConfig.build(corpus="c", output="o", format="beir", num_negatives=0)
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['negativs'\]"):
        ExportConfig.build(corpus="c", output="o", format="beir", negativs="x")
    with pytest.raises(ConfigError, match="format"):
        ExportConfig.build(corpus="c", output="o", format="dpr")


def test_the_export_corpus_flow_exports_and_publishes_the_card(corpus, tmp_path, prefect_harness):
    import importlib.util

    from prefect_artifacts import latest_artifact

    spec = importlib.util.spec_from_file_location(
        "export_corpus_flow", Path(__file__).resolve().parents[1] / "flows" / "export_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.export_corpus(str(corpus), "beir", str(tmp_path / "flow-export"),
                                   settings={"heldout_fraction": 0.25, "quality_filter": False})
    assert not summary["up_to_date"] and summary["counts"]["eng_Latn-eng_Latn"] > 0
    assert (tmp_path / "flow-export" / "export.json").is_file()
    artifact = latest_artifact("export-beir")
    assert artifact.type == "markdown" and "beir export" in artifact.data
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['pairz'\]"):
        module.export_corpus(str(corpus), "beir", str(tmp_path / "other"), settings={"pairz": "x-x"})


# --------------------------------------------------------------------------- training with mined negatives


def test_training_pairs_take_mined_negatives_in_the_positives_language_and_batches_keep_them_apart(corpus, mined):
    from polyqa.batching.pairs import SKIP_NO_HARD_NEGATIVE, load_training_pairs
    from polyqa.batching.planner import BatchingConfig, BatchPlanner

    pairs = load_training_pairs(corpus, LANGS, hard_negatives="mined", mined_negatives=mined.folder,
                                quality_filter=False)
    for k, lang in enumerate(LANGS):
        table = mined.table(lang).to_pylist()
        passages = {r["passage_id"]: r["passage"] for r in rows(corpus, lang)}
        for i, neg in enumerate(table):
            if neg["negative_passage_ids"]:
                assert pairs.usable[i, k] and pairs.negatives[k][i].as_py() == passages[neg["negative_passage_ids"][0]]
            else:
                assert not pairs.usable[i, k]
        assert pairs.skipped[lang][SKIP_NO_HARD_NEGATIVE] == sum(not n["negative_passage_ids"] for n in table)
    sep = pairs.separation
    assert any(sep.negatives[i] & {int(sep.positive[j])} for i in range(len(sep.positive))
               for j in range(len(sep.positive)))  # some row's negative is another's positive: a real constraint
    planner = BatchPlanner(pairs.usable, LANGS, 4, BatchingConfig(strategy="hybrid", seed=3), sep)
    unconstrained = BatchPlanner(pairs.usable, LANGS, 4, BatchingConfig(strategy="hybrid", seed=3))
    clashes = 0
    for guarded, free in zip(planner.epoch_batches(0), unconstrained.epoch_batches(0)):
        positives = {int(sep.positive[i]) for i in guarded.qa}
        assert not any(sep.negatives[i] & positives for i in guarded.qa)
        free_positives = {int(sep.positive[i]) for i in free.qa}
        clashes += any(sep.negatives[i] & free_positives for i in free.qa)
    assert clashes > 0  # without the separation such batches do occur


def test_polyqa_train_uses_mined_negatives(corpus, mined, tmp_path):
    from polyqa.train import TrainConfig, TrainJob

    config = TrainConfig.load(None, {"corpus": str(corpus), "output_dir": str(tmp_path / "run"),
                                     "languages": ["en", "de"], "hard_negatives": "mined",
                                     "negatives": str(mined.folder), "quality_filter": False, "base_model": "minilm",
                                     "batch_size": 4, "max_steps": 2, "max_seq_length": 32, "strategy": "hybrid"},
                              source="test")
    job = TrainJob(config)
    assert job.pairs.separation is not None and job.planner.separate is job.pairs.separation
    record = job.run().record
    assert record["global_step"] == 2
    assert record["training_info"]["hard_negatives"] == "mined"
    with pytest.raises(ConfigError, match="needs negatives"):
        TrainConfig.load(None, {"corpus": str(corpus), "output_dir": str(tmp_path / "x"), "hard_negatives": "mined"},
                         source="test")


def test_the_miners_filters_can_be_turned_off_on_the_command_line(corpus, tmp_path, capsys):
    from polyqa.cli import main

    out = tmp_path / "negatives"
    assert main(["mine-negatives", str(corpus), "--model", "minilm", "--output", str(out), "--languages", "en",
                 "--relative-margin", "none", "--max-score", "none", "--num-negatives", "2"]) == 0
    settings = json.loads((out / "negatives.json").read_text())["settings"]
    assert settings["relative_margin"] is None and settings["max_score"] is None and settings["num_negatives"] == 2
    assert main(["mine-negatives", str(corpus), "--model", "minilm", "--relative-margin", "off"]) != 0
    assert "argument --relative-margin: invalid float value: 'off'" in capsys.readouterr().err
