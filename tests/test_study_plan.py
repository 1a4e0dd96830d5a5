"""The study's grid beyond the cross product (alpha and cap axes, extra cells), its cache keys, the
MLQA-R article sample, and the plan with estimated costs of the committed configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from polyqa.errors import ConfigError
from polyqa.study import StudyConfig, cell_key, plan_cells, plan_rows, train_key
from polyqa.study.articles import sample_articles
from polyqa.study.config import DEFAULT_ALPHA
from polyqa.study.grid import _hash

REPO = Path(__file__).resolve().parents[1]


def config(**overrides) -> StudyConfig:
    base = dict(name="t", results_dir="r", work_dir="w", corpus="c", language_order=["en", "de", "es", "ar"],
                unseen=["el"], language_counts=[1, 2, 4], strategies=["x-x-mono", "x-y", "hybrid"],
                train={"alpha": 0.5}, evaluate=[{"benchmark": "xquad-r", "data_dir": "x"}])
    base.update(overrides)
    return StudyConfig(**base)


def test_default_alpha_is_the_training_default():
    from polyqa import settings
    from polyqa.train.config import TrainConfig

    assert settings.defaults(TrainConfig)["alpha"] == DEFAULT_ALPHA


def test_extra_cells_add_seeds_alphas_and_caps_without_a_cross_product():
    cells, skipped = plan_cells(config(extra_cells=[
        {"n_languages": [2, 4], "strategy": ["x-x-mono", "x-y", "hybrid"], "seeds": [1, 2]},
        {"n_languages": 4, "strategy": "hybrid", "alpha": [0.25, 0.5, 0.75]},
        {"n_languages": 4, "strategy": ["hybrid", "x-y"], "languages_per_batch": [2, 4]},
        {"n_languages": 4, "strategy": "x-y", "alpha": 0.25},
    ]))
    labels = [c.label for c in cells]
    assert len(labels) == len(set(labels))
    main = 1 + 1 + 3 + 3  # zero-shot, n=1 mono, n=2 and n=4 x 3 strategies
    assert len(labels) == main + 2 * 3 * 2 + 2 + 2 * 2
    assert {"n4-hybrid-a0.25-capall-seed0", "n4-hybrid-a0.75-capall-seed0", "n4-hybrid-cap2-seed0",
            "n4-x-y-cap4-seed0", "n2-x-x-mono-capall-seed2", "n4-hybrid-capall-seed1"} <= set(labels)
    # alpha 0.5 is train.alpha: the main grid's cell, not a second one
    assert "n4-hybrid-a0.5-capall-seed0" not in labels
    alphas = {c.label: c.alpha for c in cells}
    assert alphas["n4-hybrid-a0.25-capall-seed0"] == 0.25 and alphas["n4-hybrid-capall-seed0"] is None
    assert {"n_languages": 4, "strategy": "x-y", "cap": None,
            "why": "alpha mixes x-x-mono into hybrid batches; x-y has no alpha"} in skipped


def test_alphas_axis_applies_to_hybrid_cells_only():
    cells, _ = plan_cells(config(language_counts=[2], alphas=[None, 0.25]))
    assert [c.label for c in cells] == ["n0-zero-shot-capall-seed0", "n2-x-x-mono-capall-seed0",
                                        "n2-x-y-capall-seed0", "n2-hybrid-capall-seed0",
                                        "n2-hybrid-a0.25-capall-seed0"]


def test_several_base_models_are_an_axis_with_labelled_cells():
    cells, _ = plan_cells(config(base_model=["minilm", "org/some-encoder"], language_counts=[2],
                                 strategies=["hybrid"]))
    assert [c.label for c in cells] == ["minilm-n0-zero-shot-capall-seed0", "minilm-n2-hybrid-capall-seed0",
                                        "some-encoder-n0-zero-shot-capall-seed0",
                                        "some-encoder-n2-hybrid-capall-seed0"]


@pytest.mark.parametrize("bad, message", [
    ({"extra_cells": [{"n_languages": 2}]}, r"extra_cells\[0\] must be a mapping .* with n_languages and strategy"),
    ({"extra_cells": [{"n_languages": 2, "strategy": "hybrid", "alpha": 1.5}]}, r"extra_cells\[0\].alpha must be <= 1"),
    ({"extra_cells": [{"n_languages": 9, "strategy": "hybrid"}]}, "outside 1..4"),
    ({"extra_cells": [{"n_languages": 2, "strategy": "hybrid", "seeds": 1}]}, r"extra_cells\[0\].seeds must be a list"),
    ({"alphas": [2]}, r"alphas\[\] must be <= 1"),
    ({"base_model": ["minilm", "minilm"]}, "list of distinct models"),
    ({"evaluate": [{"benchmark": "miracl", "data_dir": "x", "sample_articles": 3}]},
     "sample_articles needs a benchmark with articles"),
    ({"evaluate": [{"benchmark": "mlqa-r", "data_dir": "x", "sample_articles": 0}]},
     r"evaluate\[0\].sample_articles must be >= 1"),
    ({"cost_estimate": {"unit": "h", "train": -1}}, "cost_estimate.train must be >= 0"),
    ({"cost_estimate": {"unit": "h", "evaluate": {"mlqa-r": 1}}}, "cost_estimate.evaluate must give one estimate"),
    ({"cost_estimate": {"train": 1}}, "cost_estimate must be a mapping .* with a unit"),
])
def test_invalid_axes_and_estimates_are_refused_naming_the_setting(bad, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        config(**bad)


def test_keys_keep_the_earlier_layout_and_separate_training_from_evaluation():
    study = config()
    cells, _ = plan_cells(study)
    hybrid = next(c for c in cells if c.label == "n2-hybrid-capall-seed0")
    # The single key of earlier studies: a cell whose inputs did not change keeps its record.
    earlier = _hash({"cell": {"n_languages": 2, "strategy": "hybrid", "languages_per_batch": None, "seed": 0,
                              "languages": ["eng_Latn", "deu_Latn"]},
                     "base_model": "minilm", "train": {"alpha": 0.5}, "evaluate": study.evaluate,
                     "split": None, "unseen": ["ell_Grek"], "corpus": "fp"})
    assert cell_key(study, hybrid, "fp") == earlier
    # Another benchmark: a new evaluation key, the same model.
    more = config(evaluate=study.evaluate + [{"benchmark": "mlqa-r", "data_dir": "m", "sample_articles": 3}])
    assert train_key(more, hybrid, "fp") == train_key(study, hybrid, "fp")
    assert cell_key(more, hybrid, "fp") != cell_key(study, hybrid, "fp")
    # Another alpha, corpus or training setting: another model.
    other, _ = plan_cells(config(language_counts=[2], alphas=[0.25]))
    assert train_key(study, other[-1], "fp") != train_key(study, hybrid, "fp")
    assert train_key(study, hybrid, "fp2") != train_key(study, hybrid, "fp")
    assert train_key(config(train={"alpha": 0.5, "max_steps": 3}), hybrid, "fp") != train_key(study, hybrid, "fp")


def test_mined_cells_are_their_own_recipe_keyed_by_the_miner_settings():
    extra = [{"n_languages": 2, "strategy": "hybrid", "hard_negatives": ["mined", False], "seeds": [0, 1]}]
    study = config(language_counts=[2], strategies=["hybrid"], extra_cells=extra, mining={"model": "minilm"})
    cells, _ = plan_cells(study)
    labels = [c.label for c in cells]
    assert labels == ["n0-zero-shot-capall-seed0", "n2-hybrid-capall-seed0", "n2-hybrid-mined-capall-seed0",
                      "n2-hybrid-mined-capall-seed1", "n2-hybrid-capall-seed1"]
    by_label = dict(zip(labels, cells))
    mined, plain = by_label["n2-hybrid-mined-capall-seed0"], by_label["n2-hybrid-capall-seed0"]
    assert train_key(study, mined, "fp") != train_key(study, plain, "fp")
    # Other miner settings: other negatives, so another model for mined cells only.
    other = config(language_counts=[2], strategies=["hybrid"], extra_cells=extra,
                   mining={"model": "minilm", "num_negatives": 5})
    assert train_key(other, mined, "fp") != train_key(study, mined, "fp")
    assert train_key(other, plain, "fp") == train_key(study, plain, "fp") == train_key(config(), plain, "fp")


@pytest.mark.lareqa_release
def test_mlqa_r_article_sample_is_seeded_aligned_across_languages_and_sized_as_configured(mlqa_r_release):
    from polyqa.evaluate.benchmark import load_benchmark

    MLQA_R_DIR = mlqa_r_release
    titles, total = sample_articles(MLQA_R_DIR, 180, 0)
    assert total == 520
    assert (titles, total) == sample_articles(MLQA_R_DIR, 180, 0)
    assert titles != sample_articles(MLQA_R_DIR, 180, 1)[0]
    sample = load_benchmark("mlqa-r", MLQA_R_DIR, titles=set(titles))
    full = load_benchmark("mlqa-r", MLQA_R_DIR)
    # The size stated in configs/cpu-scaling.yaml.
    assert (len(sample.queries), len(sample.candidates)) == (1329, 6155)
    # Whole articles in every language: a sampled question keeps all its relevant sentences.
    relevant = {(q.qid, q.language): len(q.relevant) for q in full.queries}
    assert all(len(q.relevant) == relevant[(q.qid, q.language)] >= 2 for q in sample.queries)
    assert len({q.language for q in sample.queries}) == 7


def test_cpu_scaling_config_plans_the_grid_of_the_issue():
    study = StudyConfig.from_yaml(REPO / "configs" / "cpu-scaling.yaml")
    rows, skipped, totals = plan_rows(study)
    labels = [r["cell"] for r in rows]
    assert totals["cells"] == 35 and totals["trained"] == 34 and len(set(labels)) == 35
    for n in (2, 9):
        for strategy in ("x-x-mono", "x-y", "hybrid"):
            assert {f"n{n}-{strategy}-capall-seed{s}" for s in (0, 1, 2)} <= set(labels)
    assert {"n9-hybrid-a0.25-capall-seed0", "n9-hybrid-a0.75-capall-seed0", "n9-hybrid-cap2-seed0",
            "n9-hybrid-cap4-seed0", "n9-x-y-cap2-seed0", "n9-x-y-cap4-seed0"} <= set(labels)
    assert {"n1-x-x-mono-capall-seed0", "n3-hybrid-capall-seed0", "n5-x-y-capall-seed0"} <= set(labels)
    assert {f"n9-hybrid-mined-capall-seed{s}" for s in (0, 1, 2)} <= set(labels)
    mlqa = next(spec for spec in study.evaluate if spec["benchmark"] == "mlqa-r")
    assert mlqa["sample_articles"] == 180 and mlqa["data_dir"] == "$POLYQA_DATA_DIR/mlqa-r"
    assert totals["total_cost"] == pytest.approx(34 * 0.08 + 35 * 0.06)


def test_paper_scaling_plan_lists_every_cell_and_its_cost_without_data_or_models(tmp_path):
    """In a fresh process with no data folder: the plan reads no data and imports no model code."""
    script = (
        "import json, sys\n"
        "from polyqa.study import StudyConfig, plan_rows\n"
        "study = StudyConfig.from_yaml(sys.argv[1])\n"
        "rows, skipped, totals = plan_rows(study)\n"
        "print(json.dumps({'rows': rows, 'totals': totals, 'models': study.base_models, 'train': study.train,\n"
        "                  'corpus': study.corpus, 'evaluate': study.evaluate,\n"
        "                  'imported': sorted(m for m in ('torch', 'transformers', 'sentence_transformers',\n"
        "                                                 'ctranslate2') if m in sys.modules)}))\n"
    )
    env = {**os.environ, "POLYQA_DATA_DIR": str(tmp_path / "no-data"), "POLYQA_HOME": str(tmp_path / "no-home")}
    out = subprocess.run([sys.executable, "-c", script, str(REPO / "configs" / "paper-scaling.yaml")],
                         capture_output=True, text=True, env=env, check=True, timeout=300)
    plan = json.loads(out.stdout)
    assert plan["imported"] == []
    assert plan["models"] == ["xlm-r", "labse"]
    assert plan["totals"]["cells"] == 2 * 32 and plan["totals"]["trained"] == 2 * 31
    assert plan["totals"]["unit"].startswith("GPU hours")
    assert plan["totals"]["total_cost"] > plan["totals"]["cells_cost"] > 0
    assert all(r["cost"]["total"] > 0 for r in plan["rows"])
    assert all(r["cost"]["train"] > 0 for r in plan["rows"] if "zero-shot" not in r["cell"])
    # The paper's set-up: NLLB-600M translating SQuAD into nine languages, batch 100, lr 3e-5, full benchmarks.
    corpus = plan["corpus"]
    assert corpus["model"] == "facebook/nllb-200-distilled-600M" and "squad" in json.dumps(corpus["sources"])
    assert len(corpus["languages"]) == 8  # + English
    assert plan["train"]["batch_size"] == 100 and plan["train"]["learning_rate"] == pytest.approx(3e-5)
    assert {spec["benchmark"] for spec in plan["evaluate"]} == {"xquad-r", "mlqa-r", "miracl"}
    assert not any({"sample_articles", "max_questions", "held_out", "languages"} & set(spec)
                   for spec in plan["evaluate"])
    # The command prints the same plan, with the total.
    cli = subprocess.run([sys.executable, "-m", "polyqa.cli", "study", "--config",
                          str(REPO / "configs" / "paper-scaling.yaml"), "--plan"],
                         capture_output=True, text=True, env=env, check=True, timeout=300)
    lines = cli.stdout.splitlines()
    assert sum(" est. " in line for line in lines[:-1]) == 64  # one line per cell, then the total
    assert lines[-1].startswith("64 cells (62 trained); est. ")
