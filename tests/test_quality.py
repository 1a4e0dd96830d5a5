"""Answer projection and quality scores."""

from __future__ import annotations

import pytest

from polyqa.corpus.schema import PROJECTION_EXACT, PROJECTION_FUZZY, PROJECTION_NONE, PROJECTION_NORMALIZED
from polyqa.corpus.quality import (
    QualityThresholds,
    identifiable_languages,
    identify,
    normalize_text,
    project_answer,
    repetition,
    score_text,
)

GERMAN = "Die Verteidigung der Panthers gab nur 308 Punkte ab und belegte den sechsten Platz in der Liga."
ENGLISH = "The Panthers defense gave up just 308 points, ranking sixth in the league."


def test_projection_exact_normalized_fuzzy_none():
    passage = "Der Leuchtturm von Alexandria, auch Pharos genannt, war sehr hoch."
    p = project_answer("Pharos", passage)
    assert (p.kind, p.start, p.text) == (PROJECTION_EXACT, passage.index("Pharos"), "Pharos")
    p = project_answer("pharos!", passage)
    assert p.kind == PROJECTION_NORMALIZED and passage[p.start:p.start + len(p.text)] == p.text == "Pharos"
    p = project_answer("Leuchturm von Alexandria", passage)  # a typo: fuzzy, widened to whole words
    assert p.kind == PROJECTION_FUZZY and p.text == "Leuchtturm von Alexandria"
    assert passage[p.start:].startswith(p.text) and p.score >= 85
    p = project_answer("Kawann Short", passage)
    assert (p.kind, p.start, p.text) == (PROJECTION_NONE, None, None)
    assert project_answer("   ", passage).kind == PROJECTION_NONE
    # a stricter threshold turns the fuzzy match into none
    assert project_answer("Leuchturm von Alexandria", passage, fuzzy_threshold=99.5).kind == PROJECTION_NONE


def test_projection_in_unspaced_script():
    passage = "卡罗来纳黑豹队的防守只丢了308分，在联盟中排名第六。"
    p = project_answer("308分", passage)
    assert p.kind == PROJECTION_EXACT and passage[p.start:p.start + 4] == "308分"
    assert normalize_text("Foo,  BAR!") == "foo bar"


def test_language_id_maps_to_nllb_and_scores():
    label, code, probability = identify(GERMAN)
    assert (label, code) == ("de", "deu_Latn") and probability > 0.9
    scores = score_text("Wie viele Punkte?", GERMAN, "How many points?", ENGLISH, "deu_Latn")
    assert scores.flags == [] and scores.passed and scores.langid == "deu_Latn"
    assert scores.length_ratio == pytest.approx(len(GERMAN) / len(ENGLISH))
    wrong = score_text("Wie viele Punkte?", GERMAN, "How many points?", ENGLISH, "fra_Latn")
    assert "langid_mismatch" in wrong.flags and not wrong.passed


def test_language_py3langid_cannot_identify_gets_null_score():
    assert "fuv" in identifiable_languages() and "ayr" not in identifiable_languages()
    scores = score_text("Kunasa?", "Jupa jach'a markanx sarapxi, ukatx jupax utapar kutt'anxi.", "Q?",
                        "They went to the big town, and then he came back home.", "ayr_Latn")
    assert scores.langid is None and scores.langid_score is None
    assert "langid_mismatch" not in scores.flags and "langid_low_score" not in scores.flags


def test_length_repetition_and_empty_flags():
    t = QualityThresholds(min_length_ratio=0.5, max_length_ratio=2.0, max_repetition=0.3)
    short = score_text("Was?", "Kurz.", "What?", ENGLISH, "deu_Latn", t)
    assert "length_ratio_low" in short.flags
    long = score_text("Was?", GERMAN * 3, "What?", ENGLISH, "deu_Latn", t)
    assert "length_ratio_high" in long.flags
    babble = "das das das das das das das das das das das das das"
    assert repetition(babble) > 0.8 and repetition(GERMAN) == 0.0
    assert "repetition" in score_text("Was?", babble, "What?", "a b c d e f g h i j k l m", "deu_Latn", t).flags
    assert repetition("流流流流流流流流流流流流") > 0.8  # unspaced scripts: character n-grams
    empty = score_text("", "  ", "What?", ENGLISH, "deu_Latn", t)
    assert empty.flags == ["empty_question", "empty_passage"] and not empty.passed


def test_thresholds_from_config_reject_unknown_keys():
    assert QualityThresholds.from_config({"max_repetition": 0.2}).max_repetition == 0.2
    with pytest.raises(ValueError, match="unknown quality thresholds"):
        QualityThresholds.from_config({"max_repetitions": 0.2})


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

WORDS = st.lists(st.sampled_from(["Alpha", "beta", "GAMMA", "delta,", "épsilon", "zeta.", "eta", "(theta)", "11"]),
                 min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(WORDS, st.data())
def test_projection_finds_every_span_of_the_passage(words, data):
    passage = " ".join(words)
    i = data.draw(st.integers(0, len(words) - 1))
    j = data.draw(st.integers(i + 1, len(words)))
    answer = " ".join(words[i:j])
    exact = project_answer(answer, passage)
    assert exact.kind == PROJECTION_EXACT and passage[exact.start:exact.start + len(answer)] == answer
    # changed case and punctuation: still found, and the returned span is the passage's own text
    variant = project_answer(answer.upper().replace(",", "").replace(".", ""), passage)
    assert variant.kind in (PROJECTION_EXACT, PROJECTION_NORMALIZED, PROJECTION_FUZZY)
    assert passage[variant.start:variant.start + len(variant.text)] == variant.text
    assert normalize_text(variant.text) == normalize_text(answer) or variant.kind == PROJECTION_FUZZY
