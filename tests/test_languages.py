import pytest

from polyqa import languages as L
from polyqa.cli import main


@pytest.mark.parametrize(
    "code, expected",
    [
        ("de", "deu_Latn"),
        ("deu", "deu_Latn"),
        ("ger", "deu_Latn"),
        ("DEU-latn", "deu_Latn"),
        ("ar", "arb_Arab"),
        ("zh", "zho_Hans"),
        ("zh-TW", "zho_Hant"),
        ("zh-Hant", "zho_Hant"),
        ("fa", "pes_Arab"),
        ("el", "ell_Grek"),
        ("vi", "vie_Latn"),
        ("sw", "swh_Latn"),
        ("kas_Deva", "kas_Deva"),
    ],
)
def test_normalize_aliases(code, expected):
    assert L.normalize(code) == expected


def test_every_nllb_code_is_its_own_canonical_form():
    assert len(L.NLLB_CODES) == 202 == len(set(L.NLLB_CODES))
    for code in L.NLLB_CODES:
        assert L.normalize(code) == code
        assert L.normalize(code.lower()) == code


def test_ambiguous_code_lists_candidates():
    with pytest.raises(L.UnknownLanguageError) as err:
        L.normalize("kas")
    assert err.value.suggestions == ["kas_Arab", "kas_Deva"]
    assert "ambiguous" in str(err.value)


def test_unknown_code_suggests_close_matches():
    with pytest.raises(L.UnknownLanguageError) as err:
        L.normalize("deu_Latm")
    assert "deu_Latn" in err.value.suggestions
    with pytest.raises(L.UnknownLanguageError):
        L.normalize("xx")
    with pytest.raises(L.UnknownLanguageError):
        L.normalize("")


def test_normalize_many_keeps_order_and_drops_repeats():
    assert L.normalize_many("de,deu,ar, zh") == ["deu_Latn", "arb_Arab", "zho_Hans"]


def test_iso639_1_and_names():
    assert L.iso639_1("arb_Arab") == "ar"
    assert L.iso639_1("yue_Hant") is None
    assert L.name("zho_Hant") == "Chinese (Hant)"
    assert L.script("hin_Deva") == "Deva"


def test_cli_languages(capsys):
    assert main(["languages", "de", "zh-TW"]) == 0
    out = capsys.readouterr().out
    assert "deu_Latn" in out and "zho_Hant" in out
    assert main(["languages", "kas"]) == 2


def test_language_names_are_accepted_as_well_as_codes():
    assert L.normalize("German") == "deu_Latn"
    assert L.normalize("spanish") == "spa_Latn"
    assert L.normalize("Chinese") == "zho_Hans"
    assert L.normalize("Greek") == "ell_Grek"
    assert L.normalize("Arabic") == "arb_Arab"
    with pytest.raises(L.UnknownLanguageError):
        L.normalize("Klingonese")
