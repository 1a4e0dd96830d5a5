"""Sentence segmentation: exact offsets, lossless round trip, joins for spaced and unspaced scripts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyqa.languages import UnknownLanguageError
from polyqa.segment import (
    Sentence,
    join_sentences,
    join_translated,
    separators,
    split_sentences,
)

TRICKY = (
    'Dr. Smith moved to the U.S. in 1998.  He earned $3.5 million in 2.5 years, i.e. a lot. '
    '"Is it true?" she asked. "Yes!" he said.\n\nMr. J. R. R. Tolkien wrote it. '
    "The temperature was 21.7 degrees at 9 a.m. on Jan. 5. It rose."
)


def round_trip(text: str) -> str:
    sentences = split_sentences(text)
    return join_sentences([s.text for s in sentences], separators(text, sentences))


def test_tricky_english_sentences():
    sentences = split_sentences(TRICKY)
    texts = [s.text for s in sentences]
    assert texts[0] == "Dr. Smith moved to the U.S. in 1998."
    assert texts[1] == "He earned $3.5 million in 2.5 years, i.e. a lot."
    assert texts[2] == '"Is it true?" she asked.'
    assert "Mr. J. R. R. Tolkien wrote it." in texts
    assert texts[-1] == "It rose."
    assert not any(t.startswith(("Smith", "S.", "5 million", "7 degrees", "R. Tolkien")) for t in texts)
    for sentence in sentences:
        assert TRICKY[sentence.start : sentence.end] == sentence.text
        assert sentence.text == sentence.text.strip()
    assert separators(TRICKY, sentences)[0] == "  "
    assert "\n\n" in separators(TRICKY, sentences)


def test_round_trip_is_exact():
    assert round_trip(TRICKY) == TRICKY


def test_outer_whitespace_is_outside_sentences():
    text = "  \n First one. Second one.  \n"
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == ["First one.", "Second one."]
    assert round_trip(text) == text.strip()


def test_empty_and_blank():
    assert split_sentences("") == []
    assert split_sentences(" \n\t ") == []
    assert round_trip("") == ""


def test_other_language_rules_and_unknown_code():
    text = "Das ist z. B. ein Test. Er kam am 3. Oktober an. Gut."
    sentences = split_sentences(text, "de")
    assert [s.text for s in sentences][-1] == "Gut."
    assert round_trip(text) == text
    chinese = "这是第一句。这是第二句！"
    assert [s.text for s in split_sentences(chinese, "zho_Hans")] == ["这是第一句。", "这是第二句！"]
    with pytest.raises(UnknownLanguageError):
        split_sentences("Hello.", "not-a-language")


TOKENS = ["Dr.", "U.S.", "3.5", '"Hi!"', "'no'", "(see p. 4)", "word", "Word", "end.", "?", "!", "...", "$2.50", "e.g."]
WHITESPACE = [" ", "  ", "\n", "\n\n", " \t"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(WHITESPACE)), max_size=25))
def test_round_trip_property(parts):
    text = "".join(token + space for token, space in parts).strip()
    sentences = split_sentences(text)
    assert round_trip(text) == text
    for s in sentences:
        assert text[s.start : s.end] == s.text and s.text.strip() == s.text and s.text
    assert all(sep.isspace() for sep in separators(text, sentences))
    assert all(a.end <= b.start for a, b in zip(sentences, sentences[1:]))


def test_join_sentences_checks_separator_count():
    assert join_sentences(["A.", "B."], ["\n"]) == "A.\nB."
    with pytest.raises(ValueError, match="need 1 separators"):
        join_sentences(["A.", "B."], [])


def test_join_translated_spaced_and_unspaced():
    passage, starts = join_translated(["Erster Satz. ", " Zweiter."], "de", ["\n\n"])
    assert passage == "Erster Satz.\n\nZweiter."
    assert starts == [0, 14] and passage[starts[1] :] == "Zweiter."
    passage, starts = join_translated(["第一句。", "第二句。", "三。"], "zh", [" ", "\n"])
    assert passage == "第一句。第二句。\n三。"
    assert starts == [0, 4, 9]
    passage, starts = join_translated(["A.", "B."], "fr")
    assert passage == "A. B." and starts == [0, 3]
    assert join_translated([], "fr") == ("", [])
    assert Sentence("x", 0, 1).text == "x"
