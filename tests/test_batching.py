"""Batch samplers: properties over random usable masks (hypothesis), and the corpus side."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from corpus_fixtures import (
    SMALL_CORPUS_FAILING,
    SMALL_CORPUS_LANGS,
    SMALL_CORPUS_UNPROJECTED,
    write_corpus,
    xquad_r_rows,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from polyqa import languages as L
from polyqa.batching.pairs import SKIP_NULL_POSITIVE, SKIP_QUALITY, load_training_pairs
from polyqa.batching.planner import (
    HYBRID,
    MONO,
    STRATEGIES,
    XX,
    XY,
    BatchingConfig,
    BatchPlanner,
    decode_flat_index,
)
from polyqa.batching.st_sampler import BatchSamplerFactory, pair_dataset

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
LANG_POOL = ["eng_Latn", "deu_Latn", "spa_Latn", "rus_Cyrl", "zho_Hans", "arb_Arab"]


@st.composite
def planner_cases(draw, strategies=STRATEGIES):
    """A random usable mask (some rows unusable in some languages) and a config that can fill it."""
    k = draw(st.integers(2, 6))
    batch_size = draw(st.integers(2, 12))
    n = draw(st.integers(batch_size * 3, 120))
    drop = draw(st.floats(0.0, 0.25))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    usable = rng.random((n, k)) >= drop
    strategy = draw(st.sampled_from(strategies))
    cap = draw(st.one_of(st.none(), st.integers(2, k)))
    config = BatchingConfig(
        strategy=strategy,
        alpha=draw(st.floats(0.0, 1.0)),
        languages_per_batch=cap,
        language_weights=draw(st.sampled_from(["uniform", "size"])),
        seed=draw(st.integers(0, 1000)),
    )
    try:
        planner = BatchPlanner(usable, LANG_POOL[:k], batch_size, config)
    except ValueError:
        # Too few usable rows for this batch size: the planner refuses up front (tested below).
        planner = None
    return planner


def _batches(planner, epochs=2):
    return [b for e in range(epochs) for b in planner.epoch_batches(e)]


@PROPERTY_SETTINGS
@given(planner_cases())
def test_every_batch_is_full_unique_usable_and_within_the_language_cap(planner):
    assume(planner is not None)
    for batch in _batches(planner):
        assert len(batch.qa) == planner.batch_size
        assert len(set(batch.qa.tolist())) == len(batch.qa), "a qa id twice in one batch"
        assert planner.usable[batch.qa, batch.q_lang].all()
        assert planner.usable[batch.qa, batch.p_lang].all()
        langs = set(batch.q_lang.tolist()) | set(batch.p_lang.tolist())
        assert len(langs) <= planner.languages_per_batch
        assert langs <= set(batch.languages)
    assert sum(1 for _ in planner.epoch_batches(0)) == len(planner)


@PROPERTY_SETTINGS
@given(planner_cases(strategies=[XY, HYBRID]))
def test_x_y_batches_never_pair_a_question_with_its_own_language(planner):
    assume(planner is not None)
    for batch in _batches(planner):
        if batch.kind == XY:
            assert (batch.q_lang != batch.p_lang).all()


@PROPERTY_SETTINGS
@given(planner_cases(strategies=[MONO, HYBRID]))
def test_x_x_mono_batches_are_one_language(planner):
    assume(planner is not None)
    for batch in _batches(planner):
        if batch.kind == MONO:
            assert len(set(batch.q_lang.tolist()) | set(batch.p_lang.tolist())) == 1


@PROPERTY_SETTINGS
@given(planner_cases(strategies=[XX]))
def test_x_x_batches_are_monolingual_pairs(planner):
    assume(planner is not None)
    for batch in _batches(planner):
        assert batch.kind == XX
        assert (batch.q_lang == batch.p_lang).all()


@PROPERTY_SETTINGS
@given(alpha=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_hybrid_share_of_mono_batches_matches_alpha(alpha, seed):
    rng = np.random.default_rng(seed)
    usable = rng.random((400, 4)) > 0.05
    planner = BatchPlanner(
        usable, LANG_POOL[:4], 4, BatchingConfig(strategy=HYBRID, alpha=alpha, seed=seed, batches_per_epoch=100)
    )
    kinds = [b.kind for b in _batches(planner, epochs=4)]
    n = len(kinds)
    share = kinds.count(MONO) / n
    # Binomial(n, alpha): 5 standard errors, plus a little for alpha at the edges.
    assert abs(share - alpha) <= 5 * math.sqrt(alpha * (1 - alpha) / n) + 1e-9
    if alpha == 0.0:
        assert MONO not in kinds
    if alpha == 1.0:
        assert XY not in kinds


@PROPERTY_SETTINGS
@given(planner_cases(), st.integers(0, 3), st.data())
def test_deterministic_and_resumable_at_any_batch(planner, epoch, data):
    assume(planner is not None)
    full = list(planner.epoch_batches(epoch))
    again = list(planner.epoch_batches(epoch))
    start = data.draw(st.integers(0, len(full)))
    resumed = list(planner.epoch_batches(epoch, start=start))
    key = lambda bs: [(b.index, b.kind, b.qa.tolist(), b.q_lang.tolist(), b.p_lang.tolist()) for b in bs]  # noqa: E731
    assert key(again) == key(full)
    assert key(resumed) == key(full)[start:]


def test_epochs_differ_and_seeds_differ():
    usable = np.ones((200, 3), dtype=bool)
    planner = BatchPlanner(usable, LANG_POOL[:3], 8, BatchingConfig(seed=1))
    other = BatchPlanner(usable, LANG_POOL[:3], 8, BatchingConfig(seed=2))
    first = [b.qa.tolist() for b in planner.epoch_batches(0)]
    assert first != [b.qa.tolist() for b in planner.epoch_batches(1)]
    assert first != [b.qa.tolist() for b in other.epoch_batches(0)]
    # One epoch walks a permutation: with everything usable, no question repeats within it.
    flat = [q for batch in first for q in batch]
    assert len(flat) == len(set(flat)) == 25 * 8


def test_x_y_language_pairs_are_roughly_uniform_over_ordered_pairs():
    usable = np.ones((300, 3), dtype=bool)
    planner = BatchPlanner(usable, LANG_POOL[:3], 10, BatchingConfig(strategy=XY, seed=3))
    counts = np.zeros((3, 3))
    for batch in _batches(planner, epochs=4):
        np.add.at(counts, (batch.q_lang, batch.p_lang), 1)
    assert counts.trace() == 0
    off = counts[~np.eye(3, dtype=bool)]
    expected = off.sum() / 6
    assert np.all(np.abs(off - expected) < 5 * math.sqrt(expected))


def test_language_weights_zero_never_drawn_and_size_weights_follow_counts():
    usable = np.ones((200, 3), dtype=bool)
    planner = BatchPlanner(
        usable, LANG_POOL[:3], 8, BatchingConfig(strategy=XX, language_weights={"eng_Latn": 1, "deu_Latn": 1})
    )
    drawn = {int(x) for b in _batches(planner) for x in b.q_lang}
    assert drawn == {0, 1}
    usable[:150, 2] = False
    sized = BatchPlanner(usable, LANG_POOL[:3], 8, BatchingConfig(strategy=MONO, language_weights="size"))
    assert sized.weights.tolist() == pytest.approx([200 / 450, 200 / 450, 50 / 450])


def test_impossible_configurations_are_refused_with_a_reason():
    usable = np.ones((50, 3), dtype=bool)
    with pytest.raises(ValueError, match="at least 2 languages per batch"):
        BatchPlanner(usable, LANG_POOL[:3], 8, BatchingConfig(strategy=XY, languages_per_batch=1))
    with pytest.raises(ValueError, match="at least 2 languages per batch"):
        BatchPlanner(usable[:, :1], LANG_POOL[:1], 8, BatchingConfig(strategy=HYBRID, alpha=0.5))
    usable[5:, 2] = False
    with pytest.raises(ValueError, match="spa_Latn has 5 usable rows"):
        BatchPlanner(usable, LANG_POOL[:3], 8, BatchingConfig(strategy=MONO))
    with pytest.raises(ValueError, match="strategy must be one of"):
        BatchingConfig(strategy="mono")
    with pytest.raises(ValueError, match="only one language has a positive weight"):
        BatchPlanner(usable, LANG_POOL[:3], 4, BatchingConfig(strategy=XY, language_weights={"eng_Latn": 1}))
    with pytest.raises(ValueError, match="not trained on"):
        BatchPlanner(usable, LANG_POOL[:3], 8, BatchingConfig(strategy=XX, language_weights={"fra_Latn": 1}))
    # Hybrid with alpha 1 is pure x-x-mono: one language is enough.
    BatchPlanner(np.ones((50, 1), dtype=bool), LANG_POOL[:1], 8, BatchingConfig(strategy=HYBRID, alpha=1.0))


# --------------------------------------------------------------------------------------------
# From a corpus
# --------------------------------------------------------------------------------------------


def test_training_pairs_skip_and_count_unusable_rows(small_corpus):
    langs = [L.normalize(x) for x in SMALL_CORPUS_LANGS]
    for positive, null_positives in (("passage", 0), ("sentence", 2)):
        pairs = load_training_pairs(small_corpus, SMALL_CORPUS_LANGS, positive=positive)
        assert pairs.languages == langs
        assert pairs.skipped["deu_Latn"][SKIP_QUALITY] == len(SMALL_CORPUS_FAILING["de"])
        assert pairs.skipped["spa_Latn"][SKIP_NULL_POSITIVE] == null_positives
        assert pairs.skipped_total == 3 + null_positives
        de, es = langs.index("deu_Latn"), langs.index("spa_Latn")
        assert not pairs.usable[SMALL_CORPUS_FAILING["de"], de].any()
        assert pairs.usable[SMALL_CORPUS_UNPROJECTED["es"], es].all() == (positive == "passage")
        assert int(pairs.usable.sum()) == pairs.num_questions * len(langs) - pairs.skipped_total
        table = pairs.skipped_table().to_pylist()
        assert len(table) == pairs.skipped_total
        # Two shards of 120 rows each: language row 120 is row 0 of the second shard.
        failing = [r for r in table if r["reason"].startswith(SKIP_QUALITY)]
        assert [(Path(r["source"]).name, r["row"], r["field"]) for r in failing] == [
            ("part-00000-of-00002.arrow", 3, "quality_pass"),
            ("part-00000-of-00002.arrow", 50, "quality_pass"),
            ("part-00000-of-00002.arrow", 100, "quality_pass"),
        ]
        assert all("lang=deu_Latn" in r["source"] for r in failing)
        unprojected = [(Path(r["source"]).name, r["row"], r["field"]) for r in table if r not in failing]
        if positive == "sentence":
            assert unprojected == [("part-00000-of-00002.arrow", 7, "answer_sentence"),
                                   ("part-00001-of-00002.arrow", 0, "answer_sentence")]


def test_sentence_positive_is_the_answer_sentence(small_corpus, xquad_r_dir):
    pairs = load_training_pairs(small_corpus, ["en", "de"], positive="sentence", hard_negatives=True)
    rows = xquad_r_rows(xquad_r_dir, "en", limit=40)
    en = pairs.languages.index("eng_Latn")
    for i, row in enumerate(rows):
        if not pairs.usable[i, en]:
            continue
        text = pairs.text(i, en, en)
        assert text["anchor"] == row["question"]
        assert row["answer_text"] in text["positive"]
        assert text["positive"] in row["sentences"] and text["negative"] in row["sentences"]
        assert text["negative"] != text["positive"]


def test_pair_dataset_rows_are_the_decoded_pairs(small_corpus):
    pairs = load_training_pairs(small_corpus, SMALL_CORPUS_LANGS)
    dataset = pair_dataset(pairs)
    k = len(pairs.languages)
    assert len(dataset) == pairs.num_questions * k * k
    indices = [0, 5, 17, len(dataset) - 1]
    rows = dataset.__getitems__(indices)
    for index, row in zip(indices, rows):
        qa, a, b = (int(x[0]) for x in decode_flat_index([index], k))
        assert row["polyqa_pair"] == index
        assert {key: row[key] for key in ("anchor", "positive")} == pairs.text(qa, a, b)


def test_sentence_transformers_sampler_follows_the_planner_per_epoch(small_corpus):
    pairs = load_training_pairs(small_corpus, SMALL_CORPUS_LANGS)
    dataset = pair_dataset(pairs)
    factory = BatchSamplerFactory(pairs.usable, pairs.languages, BatchingConfig(seed=5, languages_per_batch=2))
    sampler = factory(dataset, batch_size=16, drop_last=False, valid_label_columns=[], generator=None, seed=42)
    planner = factory.planner(16)
    assert len(sampler) == len(planner) == 240 // 16
    for epoch in (0, 3):
        sampler.set_epoch(epoch)
        expected = [b.flat_indices(len(pairs.languages)) for b in planner.epoch_batches(epoch)]
        assert list(sampler) == expected
    with pytest.raises(ValueError, match="dataset has 10 rows"):
        factory(list(range(10)), batch_size=16)


def test_misaligned_corpus_names_file_row_and_field(tmp_path, xquad_r_dir):
    rows = {lang: xquad_r_rows(xquad_r_dir, lang, limit=20) for lang in ("en", "de")}
    rows["de"][12], rows["de"][13] = rows["de"][13], rows["de"][12]
    corpus = write_corpus(tmp_path / "bad", rows, num_shards=2)
    with pytest.raises(ValueError, match=r"lang=deu_Latn/part-00001-of-00002\.arrow, row 2: field qa_id"):
        load_training_pairs(corpus, ["en", "de"])


def test_the_planner_needs_numpy_only_and_the_package_imports_no_torch():
    import subprocess
    import sys

    code = """
import sys
import polyqa.batching.planner
third_party = {m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names) - {"__main__", "_distutils_hack"}
assert third_party <= {"numpy", "pycountry", "polyqa"}, sorted(third_party)
from polyqa.batching import STRATEGIES, BatchPlanner, TrainingPairs, load_training_pairs
import polyqa.batching.pairs
assert "torch" not in sys.modules, "torch imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_package_re_exports_its_modules_names():
    import polyqa.batching as batching
    from polyqa.batching import pairs, planner, st_sampler

    for name in batching.__all__:
        module = next(m for m in (pairs, planner, st_sampler) if hasattr(m, name))
        assert getattr(batching, name) is getattr(module, name)
    with pytest.raises(AttributeError):
        batching.no_such_name  # noqa: B018


def test_corpus_fixture_follows_the_contract(small_corpus):
    from polyqa.corpus import reader
    from polyqa.corpus.schema import CORPUS_SCHEMA

    assert reader.corpus_languages(small_corpus) == sorted(L.normalize(x) for x in SMALL_CORPUS_LANGS)
    shards = list(reader.iter_parallel(small_corpus, SMALL_CORPUS_LANGS))  # checks alignment
    assert len(shards) == 2
    assert shards[0]["en"].schema.equals(CORPUS_SCHEMA, check_metadata=False)  # keyed as the caller wrote them
