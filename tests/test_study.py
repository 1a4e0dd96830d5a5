"""The language-scaling study: grid planning, article split, and a whole tiny study run
through the `language-scaling` Prefect flow (tiny encoder, XQuAD-R imported in place)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from polyqa.errors import ConfigError
from polyqa.study import StudyConfig, plan_cells
from polyqa.study.articles import article_split

REPO = Path(__file__).resolve().parents[1]


def config(**overrides) -> StudyConfig:
    base = dict(name="t", results_dir="r", work_dir="w", corpus="c", language_order=["en", "de", "es", "ar"],
                unseen=["el"], language_counts=[1, 2, 4], strategies=["x-x-mono", "x-y", "hybrid"],
                evaluate=[{"benchmark": "xquad-r", "data_dir": "x"}])
    base.update(overrides)
    return StudyConfig(**base)


def test_plan_cells_grid_extra_seeds_and_reasons_for_left_out_cells():
    cells, skipped = plan_cells(config(extra_cells=[{"n_languages": 2, "strategy": "hybrid", "seeds": [1, 2]}]))
    labels = [c.label for c in cells]
    assert labels[0] == "n0-zero-shot-capall-seed0"
    assert "n1-x-x-mono-capall-seed0" in labels
    assert {"n2-hybrid-capall-seed1", "n2-hybrid-capall-seed2", "n4-x-y-capall-seed0"} <= set(labels)
    assert len(labels) == len(set(labels)) == 1 + 1 + 3 + 2 + 3
    assert {(s["n_languages"], s["strategy"]) for s in skipped} == {(1, "x-y"), (1, "hybrid")}
    assert all("two" in s["why"] for s in skipped)
    four = next(c for c in cells if c.n_languages == 4)
    assert four.languages == ("eng_Latn", "deu_Latn", "spa_Latn", "arb_Arab")


def test_caps_larger_than_the_language_count_are_left_out_with_a_reason():
    cells, skipped = plan_cells(config(language_counts=[2, 4], strategies=["hybrid"], languages_per_batch=[3]))
    assert [c.label for c in cells] == ["n0-zero-shot-capall-seed0", "n4-hybrid-cap3-seed0"]
    assert skipped == [{"n_languages": 2, "strategy": "hybrid", "cap": 3,
                        "why": "languages_per_batch 3 > 2 training languages"}]


@pytest.mark.parametrize("bad, message", [
    ({"unseen": ["de"]}, "both trained on and unseen"),
    ({"strategies": ["x-z"]}, "unknown strategies"),
    ({"language_counts": [5]}, "outside 1..4"),
    ({"evaluate": []}, "no benchmarks"),
])
def test_config_errors_name_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        config(**bad)


def test_article_split_is_disjoint_complete_and_deterministic(xquad_r):
    train, heldout = article_split(xquad_r.dir, 0.25, seed=3)
    expected = {10: 2, 48: 12}[xquad_r.articles]  # round(articles / 4): the excerpt, the release
    assert len(heldout) == expected and len(train) == xquad_r.articles - expected and not set(train) & set(heldout)
    assert (train, heldout) == article_split(xquad_r.dir, 0.25, seed=3)
    assert heldout != article_split(xquad_r.dir, 0.25, seed=4)[1]


@pytest.fixture(scope="module")
def tiny_study_config(tmp_path_factory, xquad_r_dir, mlqa_r_like) -> Path:
    from polyqa.tiny_encoder import build_tiny_encoder

    root = tmp_path_factory.mktemp("study")
    texts = []
    for lang in ("en", "de", "el"):
        for article in json.loads((xquad_r_dir / f"{lang}.json").read_text())["data"][:12]:
            for paragraph in article["paragraphs"]:
                texts += [paragraph["context"]] + [qa["question"] for qa in paragraph["qas"]]
    encoder = build_tiny_encoder(texts, root / "encoder", vocab_size=2000, max_seq_length=64)
    study = {
        "name": "tiny", "results_dir": str(root / "results"), "work_dir": str(root / "work"),
        "base_model": str(encoder),
        "split": {"data_dir": str(xquad_r_dir), "heldout_fraction": 0.1, "seed": 0},
        "corpus": {"name": "xq-train", "model": None, "dedup_questions": False, "card_dir": None,
                   "languages": ["de", "el"], "shard_rows": 1000,
                   "sources": [{"kind": "parallel", "path": str(xquad_r_dir), "name": "xquad-r",
                                "languages": ["en", "de", "el"]}]},
        "language_order": ["en", "de"], "unseen": ["el", "vi"], "language_counts": [1, 2],
        "strategies": ["x-x-mono", "hybrid"],
        "train": {"batch_size": 4, "max_steps": 2, "max_seq_length": 32, "positive": "sentence",
                  "checkpoint_steps": 100, "learning_rate": 1e-3},
        "evaluate": [{"benchmark": "xquad-r", "data_dir": str(xquad_r_dir), "held_out": True,
                      "candidates": "sentence", "max_questions": 6, "languages": ["en", "de", "el"]},
                     {"benchmark": "mlqa-r", "data_dir": str(mlqa_r_like), "sample_articles": 3, "sample_seed": 0,
                      "candidates": "sentence", "languages": ["en", "de", "vi"]}],
    }
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_tiny_study_through_the_flow_then_resumed_from_cache(tiny_study_config, prefect_harness):
    spec = importlib.util.spec_from_file_location("language_scaling", REPO / "flows" / "language_scaling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.language_scaling(str(tiny_study_config))
    assert summary["cells"] == 4
    study = yaml.safe_load(tiny_study_config.read_text())
    results = Path(study["results_dir"])
    with open(results / "cells.csv") as fh:
        rows = {row["cell"]: row for row in csv.DictReader(fh)}
    assert set(rows) == {"n0-zero-shot-capall-seed0", "n1-x-x-mono-capall-seed0", "n2-x-x-mono-capall-seed0",
                         "n2-hybrid-capall-seed0"}
    hybrid = rows["n2-hybrid-capall-seed0"]
    assert int(hybrid["train_steps"]) == 2 and hybrid["languages"] == "eng_Latn,deu_Latn"
    # an imported corpus: translation cost estimated from English text, none for English-only cells
    assert hybrid["translation_estimated"] == "true" and int(hybrid["translation_tokens"]) > 0
    assert int(rows["n1-x-x-mono-capall-seed0"]["translation_tokens"]) == 0
    for row in rows.values():
        assert 0 < float(row["xquad_r_multilingual_map"]) <= 1
        assert 0 <= float(row["xquad_r_multilingual_map_at_20"]) <= float(row["xquad_r_multilingual_map"])
        assert float(row["xquad_r_rank_distance"]) >= 0
        # MLQA-R zero-shot on the same three sampled articles in every cell (Vietnamese unseen)
        assert 0 < float(row["mlqa_r_multilingual_map"]) <= 1 and float(row["mlqa_r_monolingual_map"]) > 0
        assert row["mlqa_r_queries"] == rows["n0-zero-shot-capall-seed0"]["mlqa_r_queries"]
    assert float(hybrid["mlqa_r_multilingual_map_unseen"]) > 0
    assert hybrid["alpha"] == "0.5" and rows["n2-x-x-mono-capall-seed0"]["alpha"] == ""
    sample = (results / "mlqa-r-sample-articles.txt").read_text()
    assert sample.startswith("# mlqa-r: 3 of 10 articles drawn with seed 0")
    assert float(hybrid["xquad_r_multilingual_map_unseen"]) > 0  # Greek queries: never trained on
    # held-out articles only: training never saw them
    heldout = set((results / "heldout_articles.txt").read_text().split())
    train = set((results / "train_articles.txt").read_text().split())
    assert heldout and not heldout & train
    cell_dir = next(Path(study["work_dir"], "cells").glob("n2-hybrid-*"))
    evaluated = json.loads((cell_dir / "eval-xquad-r.json").read_text())
    assert evaluated["filters"]["articles_file"] == str(results / "heldout_articles.txt")
    assert evaluated["settings"]["multilingual"]["mAP@20"] is not None
    # the model is kept apart from the evaluation, keyed by its training inputs; checkpoints are gone
    model_dir = Path(study["work_dir"], "models", f"n2-hybrid-capall-seed0-{hybrid['train_key']}", "train")
    assert (model_dir / "model" / "modules.json").is_file() and not (model_dir / "checkpoints").exists()
    # per-query AP beside each record, for the bootstrap
    import pyarrow.parquet as pq

    queries = pq.read_table(results / "cells" / f"{cell_dir.name}.queries.parquet").to_pydict()
    assert set(queries["benchmark"]) == {"xquad-r", "mlqa-r"}
    assert set(queries["setting"]) == {"monolingual", "multilingual"}
    multi = [ap for b, s, ap in zip(queries["benchmark"], queries["setting"], queries["ap"])
             if b == "mlqa-r" and s == "multilingual"]
    assert len(multi) == int(hybrid["mlqa_r_queries"])
    report = (results / "REPORT.md").read_text()
    assert report.index("## Answer") < report.index("## Findings")
    assert "multilingual mAP" in report and "n2-hybrid-capall-seed0" in report and "#### MLQA-R" in report
    assert "## Significance" in report and "hybrid − x-x-mono" in report
    for png in ("map_vs_languages.png", "rank_distance_vs_languages.png", "map_vs_compute.png", "tradeoff.png"):
        assert (results / png).stat().st_size > 1000

    from prefect_artifacts import latest_artifact

    artifact = latest_artifact("study-report")
    assert artifact.type == "markdown" and artifact.data == report
    prepared = latest_artifact("study-prepared").data
    assert f"- cells: 4 (0 finished)" in prepared and "heldout_articles.txt" in prepared

    # a rerun trains nothing: every cell comes from its record
    record = results / "cells" / f"{cell_dir.name}.json"
    stamp = record.stat().st_mtime_ns
    assert module.language_scaling(str(tiny_study_config))["cells"] == 4
    assert record.stat().st_mtime_ns == stamp


def test_study_command_plan(tiny_study_config, capsys):
    from polyqa.cli import main

    assert main(["study", "--config", str(tiny_study_config), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "n2-hybrid-capall-seed0 eng_Latn,deu_Latn" in out
    assert "skipped n=1 hybrid" in out
    assert out.splitlines()[-1] == "4 cells (3 trained); no cost_estimate in the config"


def test_a_cell_on_a_machine_translated_corpus_reports_measured_translation_cost(tmp_path, xquad_r_dir, tiny_model):
    """The study reads the build's per-language translation statistics: nothing is estimated."""
    from polyqa.study import StudyJob
    from polyqa.tiny_encoder import build_tiny_encoder

    texts = [p["context"] for a in json.loads((xquad_r_dir / "en.json").read_text())["data"][:4]
             for p in a["paragraphs"]]
    encoder = build_tiny_encoder(texts, tmp_path / "encoder", vocab_size=1000, max_seq_length=32)
    study = StudyConfig.from_dict({
        "name": "translated", "results_dir": str(tmp_path / "results"), "work_dir": str(tmp_path / "work"),
        "base_model": str(encoder), "include_zero_shot": False,
        "corpus": {"name": "mt", "sources": ["polyqa_sample"], "languages": ["de"], "shard_rows": 200,
                   "model": str(tiny_model.ct2_dir), "cache": str(tmp_path / "cache.sqlite"), "card_dir": None,
                   "decoding": {"beam_size": 1, "max_length_extra": 4, "max_length_ratio": 1.0}},
        "language_order": ["en", "de"], "language_counts": [2], "strategies": ["hybrid"],
        "train": {"batch_size": 4, "max_steps": 1, "max_seq_length": 32, "positive": "passage",
                  "checkpoint_steps": 100, "quality_filter": False},  # the tiny model's babble fails quality
        "evaluate": [{"benchmark": "xquad-r", "data_dir": str(xquad_r_dir), "candidates": "sentence",
                      "max_questions": 4, "languages": ["en", "de"]}],
    })
    job = StudyJob(study)
    assert job.pending() == [0]
    [row] = job.run()
    assert row["translation_estimated"] is False
    per_language = job.plan.manifest.translation_per_language()
    assert row["translation_segments"] == per_language["deu_Latn"]["translated"] > 0
    assert row["translation_tokens"] == per_language["deu_Latn"]["source_tokens"] > 0
    assert job.pending() == []  # finished: a new job over the same config has nothing to do
    assert StudyJob(study).pending() == []


@pytest.mark.parametrize("bad, message", [
    ({"language_order": ["en", "xx"]}, "language_order: unknown language"),
    ({"unseen": ["klingon"]}, "unseen: unknown language"),
    ({"language_counts": [0]}, r"language_counts\[\] must be >= 1"),
    ({"seeds": [-1]}, r"seeds\[\] must be >= 0"),
    ({"languages_per_batch": [0]}, r"languages_per_batch\[\] must be >= 1"),
    ({"base_model": "minilmm"}, "base_model: unknown model alias 'minilmm'"),
    ({"split": {"data_dir": "x", "heldout_fraction": 1.5}}, "split.heldout_fraction must be < 1"),
    ({"split": {"data_dir": "x", "heldout_fraction": 0}}, "split.heldout_fraction must be > 0"),
    ({"split": {"heldout_fraction": 0.2}}, "split must be a mapping .* with data_dir"),
    ({"train": {"batch_size": 0}}, "train: batch_size must be >= 2"),
    ({"train": {"learning_rate": -1}}, "train: learning_rate must be > 0"),
    ({"train": {"alpha": 2}}, "train: alpha must be <= 1"),
    ({"train": {"learnig_rate": 1e-3}}, r"train: unknown setting\(s\) \['learnig_rate'\]"),
    ({"train": {"strategy": "x-y"}}, r"train: \['strategy'\] are set by the study for each cell"),
    ({"evaluate": [{"benchmark": "xquad-r", "batch_size": 0}]}, r"evaluate\[0\]: batch_size must be >= 1"),
    ({"evaluate": [{"benchmark": "xquad"}]}, r"evaluate\[0\]: unknown benchmark 'xquad'"),
    ({"evaluate": [{"data_dir": "x"}]}, r"evaluate\[0\] must be a mapping with a benchmark"),
    ({"evaluate": [{"benchmark": "xquad-r", "held_out": True}]}, r"evaluate\[0\]: held_out needs a split"),
    ({"extra_cells": [{"n_languages": 2, "strategy": "mixed"}]}, r"extra_cells\[0\].strategy must be one of"),
    ({"translation_estimate": {"tokens_per_word": 0, "tokens_per_second": 1}},
     "translation_estimate.tokens_per_word must be > 0"),
])
def test_invalid_study_settings_are_refused_naming_the_setting(bad, message):
    from polyqa.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        config(**bad)


def test_study_unknown_keys_and_unreadable_files_name_the_file(tmp_path):
    from polyqa.errors import ConfigError

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "results_dir": "r", "work_dir": "w", "corpus": "c",
                                    "language_order": ["en"], "evaluate": [{"benchmark": "xquad-r"}],
                                    "langauge_counts": [1]}))
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['langauge_counts'\]: .*study\.yaml"):
        StudyConfig.from_yaml(path)
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text .*study\.yaml: save the config as UTF-8"):
        StudyConfig.from_yaml(path)


def test_a_second_study_on_the_same_results_folder_is_refused_naming_the_holder(tmp_path):
    from polyqa.locking import OutputLock, OutputLockedError
    from polyqa.study import StudyJob

    study = config(results_dir=str(tmp_path / "results"), work_dir=str(tmp_path / "work"))
    with OutputLock(tmp_path / "results", "polyqa study (first run)"):
        with pytest.raises(OutputLockedError, match=r"being written by polyqa study \(first run\) on host"):
            StudyJob(study).prepare()


def test_the_study_cache_follows_what_training_reads_not_the_shard_bytes(tmp_path, xquad_r_dir):
    """Shards rewritten with other bytes but the same content keep every finished cell; a changed
    question does not."""
    import shutil

    import pyarrow as pa
    import pyarrow.ipc as ipc

    from polyqa.corpus.job import build_corpus
    from polyqa.corpus.manifest import Manifest
    from polyqa.study.cell import corpus_fingerprint

    corpus = tmp_path / "corpus"
    build_corpus({"name": "fp", "model": None, "languages": ["de"], "dedup_questions": False,
                  "sources": [{"kind": "parallel", "path": str(xquad_r_dir), "languages": ["en", "de"],
                               "titles": ["Normans"]}]}, corpus)
    original = corpus_fingerprint(corpus, Manifest.load(corpus))

    def rewrite(folder, change=None, compression="lz4"):
        shard = next(folder.glob("lang=deu_Latn/*.arrow"))
        table = ipc.open_file(pa.memory_map(str(shard))).read_all()
        if change:
            table = table.set_column(table.column_names.index("question"), "question",
                                     pa.array(["changed?"] + table.column("question").to_pylist()[1:]))
        with pa.OSFile(str(shard), "wb") as sink, ipc.new_file(
                sink, table.schema, options=ipc.IpcWriteOptions(compression=compression)) as writer:
            writer.write_table(table)

    same = tmp_path / "same"
    shutil.copytree(corpus, same)
    rewrite(same)
    assert corpus_fingerprint(same, Manifest.load(same)) == original
    changed = tmp_path / "changed"
    shutil.copytree(corpus, changed)
    rewrite(changed, change=True)
    assert corpus_fingerprint(changed, Manifest.load(changed)) != original


def test_adding_a_benchmark_re_evaluates_the_kept_model_without_training_it_again(tmp_path, xquad_r_dir,
                                                                                 mlqa_r_like):
    from polyqa.study import StudyJob
    from polyqa.tiny_encoder import build_tiny_encoder

    texts = [p["context"] for a in json.loads((xquad_r_dir / "en.json").read_text())["data"][:4]
             for p in a["paragraphs"]]
    encoder = build_tiny_encoder(texts, tmp_path / "encoder", vocab_size=1000, max_seq_length=32)
    xquad = {"benchmark": "xquad-r", "data_dir": str(xquad_r_dir), "candidates": "sentence",
             "max_questions": 4, "languages": ["en", "de"]}
    settings = {
        "name": "reeval", "results_dir": str(tmp_path / "results"), "work_dir": str(tmp_path / "work"),
        "base_model": str(encoder), "include_zero_shot": False,
        "corpus": {"name": "xq", "model": None, "dedup_questions": False, "card_dir": None, "languages": ["de"],
                   "sources": [{"kind": "parallel", "path": str(xquad_r_dir), "languages": ["en", "de"],
                                "titles": ["Normans", "Teacher"]}]},
        "language_order": ["en", "de"], "language_counts": [2], "strategies": ["hybrid"],
        "train": {"batch_size": 4, "max_steps": 1, "max_seq_length": 32, "positive": "sentence",
                  "checkpoint_steps": 100},
        "evaluate": [xquad],
    }
    first = StudyJob(StudyConfig.from_dict(settings))
    [row] = first.run()
    run_record = Path(settings["work_dir"], "models", f"{row['cell']}-{row['train_key']}", "train",
                      "run_record.json")
    stamp = run_record.stat().st_mtime_ns
    assert "mlqa_r_multilingual_map" not in row

    more = dict(settings, evaluate=[xquad, {"benchmark": "mlqa-r", "data_dir": str(mlqa_r_like),
                                            "sample_articles": 2, "candidates": "sentence", "max_questions": 4,
                                            "languages": ["en", "de"]}])
    second = StudyJob(StudyConfig.from_dict(more))
    assert second.pending() == [0] and second.plan.train_keys == first.plan.train_keys
    assert second.plan.keys != first.plan.keys
    [again] = second.run()
    assert run_record.stat().st_mtime_ns == stamp  # not trained again
    assert again["train_key"] == row["train_key"] and again["train_tokens"] == row["train_tokens"]
    assert again["xquad_r_multilingual_map"] == pytest.approx(row["xquad_r_multilingual_map"])
    assert again["mlqa_r_multilingual_map"] > 0
    # XQuAD-R's texts came from the kept model's embedding cache
    evaluated = json.loads(Path(settings["work_dir"], "cells", f"{again['cell']}-{again['key']}",
                                "eval-xquad-r.json").read_text())
    assert evaluated["timings"]["from_cache"] == evaluated["timings"]["unique_texts_encoded"] > 0


def test_mined_negative_cells_mine_once_train_on_them_and_are_compared_with_in_batch_cells(tmp_path, xquad_r_dir):
    """A study with hybrid cells with and without mined negatives: the negatives are mined once on
    the study corpus, the mined cells train on them, and the report compares the two recipes."""
    from polyqa.study import StudyJob
    from polyqa.tiny_encoder import build_tiny_encoder

    texts = [p["context"] for lang in ("en", "de") for a in json.loads((xquad_r_dir / f"{lang}.json").read_text())["data"][:4]
             for p in a["paragraphs"]]
    encoder = build_tiny_encoder(texts, tmp_path / "encoder", vocab_size=1000, max_seq_length=32)
    settings = {
        "name": "mined", "results_dir": str(tmp_path / "results"), "work_dir": str(tmp_path / "work"),
        "base_model": str(encoder), "include_zero_shot": False,
        "corpus": {"name": "xq", "model": None, "dedup_questions": False, "card_dir": None, "languages": ["de"],
                   "sources": [{"kind": "parallel", "path": str(xquad_r_dir), "languages": ["en", "de"],
                                "titles": ["Normans", "Teacher"]}]},
        "language_order": ["en", "de"], "language_counts": [2], "strategies": ["hybrid"],
        "extra_cells": [{"n_languages": 2, "strategy": "hybrid", "hard_negatives": "mined"}],
        # a random tiny encoder scores everything alike: no margin, or nothing would be left
        "mining": {"model": str(encoder), "num_negatives": 2, "relative_margin": None},
        "train": {"batch_size": 4, "max_steps": 1, "max_seq_length": 32, "positive": "sentence",
                  "checkpoint_steps": 100},
        "evaluate": [{"benchmark": "xquad-r", "data_dir": str(xquad_r_dir), "candidates": "sentence",
                      "max_questions": 6, "languages": ["en", "de"]}],
    }
    rows = {row["cell"]: row for row in StudyJob(StudyConfig.from_dict(settings)).run()}
    assert set(rows) == {"n2-hybrid-capall-seed0", "n2-hybrid-mined-capall-seed0"}
    assert rows["n2-hybrid-mined-capall-seed0"]["hard_negatives"] == "mined"
    assert "hard_negatives" not in rows["n2-hybrid-capall-seed0"]
    assert rows["n2-hybrid-mined-capall-seed0"]["train_key"] != rows["n2-hybrid-capall-seed0"]["train_key"]
    negatives = json.loads(Path(settings["work_dir"], "negatives", "negatives.json").read_text())
    assert negatives["settings"]["positive"] == "sentence" and negatives["settings"]["num_negatives"] == 2
    assert sorted(negatives["files"]) == ["deu_Latn", "eng_Latn"]
    mined_run = json.loads(Path(settings["work_dir"], "models",
                                f"n2-hybrid-mined-capall-seed0-{rows['n2-hybrid-mined-capall-seed0']['train_key']}",
                                "train", "run_record.json").read_text())
    assert mined_run["settings"]["hard_negatives"] == "mined"
    assert mined_run["settings"]["negatives"] == str(Path(settings["work_dir"], "negatives"))
    report = Path(settings["results_dir"], "REPORT.md").read_text()
    assert "hybrid mined − hybrid" in report
    assert "| hybrid mined | 1 |" in report  # the recipe's row beside the in-batch hybrid at n=2


def test_mined_cells_need_a_mining_section_and_train_may_not_set_negatives():
    base = dict(name="t", results_dir="r", work_dir="w", corpus="c", language_order=["en", "de"],
                language_counts=[2], strategies=["hybrid"], evaluate=[{"benchmark": "xquad-r", "data_dir": "x"}])
    with pytest.raises(ConfigError, match=r"extra_cells\[0\]: hard_negatives: mined needs a mining section"):
        StudyConfig(**base, extra_cells=[{"n_languages": 2, "strategy": "hybrid", "hard_negatives": "mined"}])
    with pytest.raises(ConfigError, match=r"extra_cells\[0\].hard_negatives must be mined or false"):
        StudyConfig(**base, extra_cells=[{"n_languages": 2, "strategy": "hybrid", "hard_negatives": "bm25"}])
    with pytest.raises(ConfigError, match="mining: unknown setting"):
        StudyConfig(**base, mining={"model": "minilm", "negatives": 3})
    with pytest.raises(ConfigError, match="train: hard_negatives and negatives are set per cell"):
        StudyConfig(**base, train={"hard_negatives": "mined"})


def test_a_damaged_cell_record_is_set_aside_with_a_warning_and_the_cell_runs_again(tmp_path, caplog):
    from polyqa.study.results import read_cell_record

    record = tmp_path / "cells" / "n2-hybrid-capall-seed0-abc.json"
    record.parent.mkdir()
    record.write_text('{"cell": "n2-hybrid-capall-seed0", "xquad_r_multi')  # cut off mid-write
    with caplog.at_level("WARNING"):
        assert read_cell_record(record) is None
    assert not record.exists()
    aside = record.with_name(record.name + ".damaged")
    assert aside.read_text().startswith('{"cell"')
    assert "is damaged" in caplog.text and aside.name in caplog.text
    record.write_text(json.dumps({"cell": "n2-hybrid-capall-seed0", "key": "abc"}))
    assert read_cell_record(record) == {"cell": "n2-hybrid-capall-seed0", "key": "abc"}
    assert read_cell_record(tmp_path / "cells" / "missing.json") is None
