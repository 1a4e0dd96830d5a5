"""NLLB-200 language codes (FLORES-200 style, ``deu_Latn``) and their aliases.

Every public function takes any accepted spelling and works on the canonical
NLLB code. Accepted spellings: the NLLB code itself (case-insensitive, ``-`` or
``_``), ISO 639-3 (``deu``), ISO 639-1 (``de``), ISO 639-2/B (``ger``) and
BCP-47 style language-script tags (``zh-Hant``, ``sr-Cyrl``).
"""

from __future__ import annotations

import difflib
from functools import lru_cache

import pycountry

# English is a language like the others in a corpus; this is its code everywhere in polyqa.
ENGLISH = "eng_Latn"

# The 202 language codes of NLLB-200 in the model's own vocabulary order
# (facebook/nllb-200-* tokenizers; FLORES-200 naming).
NLLB_CODES: tuple[str, ...] = (
    "ace_Arab", "ace_Latn", "acm_Arab", "acq_Arab", "aeb_Arab", "afr_Latn", "ajp_Arab",
    "aka_Latn", "amh_Ethi", "apc_Arab", "arb_Arab", "ars_Arab", "ary_Arab", "arz_Arab",
    "asm_Beng", "ast_Latn", "awa_Deva", "ayr_Latn", "azb_Arab", "azj_Latn", "bak_Cyrl",
    "bam_Latn", "ban_Latn", "bel_Cyrl", "bem_Latn", "ben_Beng", "bho_Deva", "bjn_Arab",
    "bjn_Latn", "bod_Tibt", "bos_Latn", "bug_Latn", "bul_Cyrl", "cat_Latn", "ceb_Latn",
    "ces_Latn", "cjk_Latn", "ckb_Arab", "crh_Latn", "cym_Latn", "dan_Latn", "deu_Latn",
    "dik_Latn", "dyu_Latn", "dzo_Tibt", "ell_Grek", "eng_Latn", "epo_Latn", "est_Latn",
    "eus_Latn", "ewe_Latn", "fao_Latn", "pes_Arab", "fij_Latn", "fin_Latn", "fon_Latn",
    "fra_Latn", "fur_Latn", "fuv_Latn", "gla_Latn", "gle_Latn", "glg_Latn", "grn_Latn",
    "guj_Gujr", "hat_Latn", "hau_Latn", "heb_Hebr", "hin_Deva", "hne_Deva", "hrv_Latn",
    "hun_Latn", "hye_Armn", "ibo_Latn", "ilo_Latn", "ind_Latn", "isl_Latn", "ita_Latn",
    "jav_Latn", "jpn_Jpan", "kab_Latn", "kac_Latn", "kam_Latn", "kan_Knda", "kas_Arab",
    "kas_Deva", "kat_Geor", "knc_Arab", "knc_Latn", "kaz_Cyrl", "kbp_Latn", "kea_Latn",
    "khm_Khmr", "kik_Latn", "kin_Latn", "kir_Cyrl", "kmb_Latn", "kon_Latn", "kor_Hang",
    "kmr_Latn", "lao_Laoo", "lvs_Latn", "lij_Latn", "lim_Latn", "lin_Latn", "lit_Latn",
    "lmo_Latn", "ltg_Latn", "ltz_Latn", "lua_Latn", "lug_Latn", "luo_Latn", "lus_Latn",
    "mag_Deva", "mai_Deva", "mal_Mlym", "mar_Deva", "min_Latn", "mkd_Cyrl", "plt_Latn",
    "mlt_Latn", "mni_Beng", "khk_Cyrl", "mos_Latn", "mri_Latn", "zsm_Latn", "mya_Mymr",
    "nld_Latn", "nno_Latn", "nob_Latn", "npi_Deva", "nso_Latn", "nus_Latn", "nya_Latn",
    "oci_Latn", "gaz_Latn", "ory_Orya", "pag_Latn", "pan_Guru", "pap_Latn", "pol_Latn",
    "por_Latn", "prs_Arab", "pbt_Arab", "quy_Latn", "ron_Latn", "run_Latn", "rus_Cyrl",
    "sag_Latn", "san_Deva", "sat_Beng", "scn_Latn", "shn_Mymr", "sin_Sinh", "slk_Latn",
    "slv_Latn", "smo_Latn", "sna_Latn", "snd_Arab", "som_Latn", "sot_Latn", "spa_Latn",
    "als_Latn", "srd_Latn", "srp_Cyrl", "ssw_Latn", "sun_Latn", "swe_Latn", "swh_Latn",
    "szl_Latn", "tam_Taml", "tat_Cyrl", "tel_Telu", "tgk_Cyrl", "tgl_Latn", "tha_Thai",
    "tir_Ethi", "taq_Latn", "taq_Tfng", "tpi_Latn", "tsn_Latn", "tso_Latn", "tuk_Latn",
    "tum_Latn", "tur_Latn", "twi_Latn", "tzm_Tfng", "uig_Arab", "ukr_Cyrl", "umb_Latn",
    "urd_Arab", "uzn_Latn", "vec_Latn", "vie_Latn", "war_Latn", "wol_Latn", "xho_Latn",
    "ydd_Hebr", "yor_Latn", "yue_Hant", "zho_Hans", "zho_Hant", "zul_Latn",
)

# NLLB names the individual language where ISO 639-1 names a macrolanguage
# (``ar`` is the macrolanguage ``ara``; NLLB's standard Arabic is ``arb``).
# These are the conventional defaults for those codes.
_MACRO_DEFAULTS: dict[str, str] = {
    "ara": "arb_Arab", "zho": "zho_Hans", "fas": "pes_Arab", "per": "pes_Arab",
    "lav": "lvs_Latn", "swa": "swh_Latn", "msa": "zsm_Latn", "may": "zsm_Latn",
    "aze": "azj_Latn", "uzb": "uzn_Latn", "mlg": "plt_Latn", "mon": "khk_Cyrl",
    "nep": "npi_Deva", "ori": "ory_Orya", "orm": "gaz_Latn", "pus": "pbt_Arab",
    "que": "quy_Latn", "sqi": "als_Latn", "alb": "als_Latn", "yid": "ydd_Hebr",
    "est": "est_Latn", "kur": "kmr_Latn", "aym": "ayr_Latn", "grn": "grn_Latn",
    "kau": "knc_Latn", "ful": "fuv_Latn", "kon": "kon_Latn", "nor": "nob_Latn",
    "hbs": "srp_Cyrl", "tmh": "taq_Latn",
}

# BCP-47 region tags that imply a script for Chinese.
_REGION_SCRIPTS = {"cn": "Hans", "sg": "Hans", "tw": "Hant", "hk": "Hant", "mo": "Hant"}


class UnknownLanguageError(ValueError):
    """A language code that is not an NLLB-200 language, or names several."""

    def __init__(self, code: str, reason: str, suggestions: list[str]):
        self.code = code
        self.suggestions = suggestions
        hint = f"; did you mean one of: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"{reason}: {code!r}{hint}")


@lru_cache(maxsize=None)
def _by_lower() -> dict[str, str]:
    return {c.lower(): c for c in NLLB_CODES}


@lru_cache(maxsize=None)
def _by_iso3() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    for code in NLLB_CODES:
        table.setdefault(code[:3], []).append(code)
    return {k: tuple(v) for k, v in table.items()}


def _iso3_of(token: str) -> str | None:
    """ISO 639-3 code for an ISO 639-1, 639-2/B or 639-3 token, via pycountry."""
    if len(token) == 2:
        record = pycountry.languages.get(alpha_2=token)
    elif len(token) == 3:
        record = pycountry.languages.get(alpha_3=token) or pycountry.languages.get(
            bibliographic=token
        )
    else:
        return None
    return record.alpha_3 if record is not None else None


@lru_cache(maxsize=None)
def _names() -> dict[str, str]:
    """Lower-case English language name -> ISO 639-3, for the languages NLLB-200 covers."""
    table: dict[str, str] = {}
    covered = set(_by_iso3()) | set(_MACRO_DEFAULTS)
    for record in pycountry.languages:
        if record.alpha_3 in covered:
            for label in (record.name, getattr(record, "inverted_name", None), getattr(record, "common_name", None)):
                if label:
                    table.setdefault(label.lower(), record.alpha_3)
                    table.setdefault(label.split(" (")[0].lower(), record.alpha_3)
    table.update({"greek": "ell", "chinese": "zho", "persian": "fas", "farsi": "fas", "swahili": "swa"})
    return table


def _iso3_of_name(text: str) -> str | None:
    return _names().get(" ".join(text.lower().split()))


def _suggest(code: str) -> list[str]:
    lowered = code.lower().replace("-", "_")
    prefix = lowered[:3]
    same_prefix = [c for c in NLLB_CODES if c.lower().startswith(prefix)] if len(prefix) == 3 else []
    close = difflib.get_close_matches(lowered, list(_by_lower()), n=5, cutoff=0.6)
    by_name = [normalize(name) for name in difflib.get_close_matches(code.lower(), list(_names()), n=3, cutoff=0.75)]
    seen: list[str] = []
    for c in by_name + same_prefix + [_by_lower()[c] for c in close]:
        if c not in seen:
            seen.append(c)
    return seen[:6]


@lru_cache(maxsize=4096)
def normalize(code: str) -> str:
    """Return the canonical NLLB code for ``code``, or raise UnknownLanguageError."""
    if not isinstance(code, str) or not code.strip():
        raise UnknownLanguageError(str(code), "empty language code", [])
    raw = code.strip()
    lowered = raw.lower().replace("-", "_")
    if lowered in _by_lower():
        return _by_lower()[lowered]

    parts = lowered.split("_")
    language, script = parts[0], None
    for extra in parts[1:]:
        if len(extra) == 4:
            script = extra.capitalize()
        elif extra in _REGION_SCRIPTS and script is None:
            script = _REGION_SCRIPTS[extra]
    iso3 = _iso3_of(language)
    if iso3 is None and len(parts) == 1:
        iso3 = _iso3_of_name(raw)  # "German", "spanish": names work as well as codes
    if iso3 is None:
        raise UnknownLanguageError(raw, "unknown language code", _suggest(raw))
    candidates = list(_by_iso3().get(iso3, ()))
    default = _MACRO_DEFAULTS.get(iso3)
    if not candidates and default:
        candidates = [c for c in NLLB_CODES if c[:3] == default[:3]]
    if script is not None:
        scripted = [c for c in candidates if c.endswith("_" + script)]
        if len(scripted) == 1:
            return scripted[0]
        raise UnknownLanguageError(
            raw, f"no NLLB-200 language with script {script}", candidates or _suggest(raw)
        )
    if len(candidates) == 1:
        return candidates[0]
    if default and default in candidates:
        return default
    if not candidates:
        raise UnknownLanguageError(raw, "language not covered by NLLB-200", _suggest(raw))
    raise UnknownLanguageError(raw, "ambiguous language code (several scripts)", candidates)


def normalize_many(codes: str | list[str] | tuple[str, ...]) -> list[str]:
    """Normalise a list (or a comma-separated string) of codes, keeping order, no repeats."""
    if isinstance(codes, str):
        codes = [c for c in codes.split(",") if c.strip()]
    out: list[str] = []
    for c in codes:
        n = normalize(c)
        if n not in out:
            out.append(n)
    return out


def script(code: str) -> str:
    """ISO 15924 script of a language, e.g. ``Latn``."""
    return normalize(code).split("_", 1)[1]


def iso639_1(code: str) -> str | None:
    """Two-letter ISO 639-1 code where one exists (macrolanguage for NLLB individual codes)."""
    nllb = normalize(code)
    iso3 = nllb[:3]
    record = pycountry.languages.get(alpha_3=iso3)
    if record is not None and getattr(record, "alpha_2", None):
        return record.alpha_2
    for macro, default in _MACRO_DEFAULTS.items():
        if default == nllb:
            record = pycountry.languages.get(alpha_3=macro)
            if record is not None and getattr(record, "alpha_2", None):
                return record.alpha_2
    return None


def name(code: str) -> str:
    """English name of a language, with its script when NLLB has several for it."""
    nllb = normalize(code)
    record = pycountry.languages.get(alpha_3=nllb[:3])
    base = record.name if record is not None else nllb[:3]
    if len(_by_iso3()[nllb[:3]]) > 1:
        base = f"{base} ({script(nllb)})"
    return base
