"""Data cards: Hugging Face style YAML front matter and a body generated from ``manifest.json``.

The body follows ``polyqa/data/card_template.md`` (``{placeholders}`` filled by
:func:`render_card`). Cards go to ``data_cards/<corpus-name>.md`` and a copy to
``<corpus>/README.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from polyqa import languages as L
from polyqa import markdown, storage
from polyqa.corpus.manifest import Manifest
from polyqa.corpus.schema import PROJECTION_KINDS
from polyqa.storage import atomic_write_bytes

# Hugging Face license identifiers for the licenses polyqa knows.
HF_LICENSES = {
    "cc0-1.0": "cc0-1.0", "cc-by-4.0": "cc-by-4.0", "cc-by-sa-4.0": "cc-by-sa-4.0",
    "cc-by-sa-3.0": "cc-by-sa-3.0", "cc-by-nc-4.0": "cc-by-nc-4.0", "apache-2.0": "apache-2.0",
    "mit": "mit",
}


def card_licenses(manifest: Manifest) -> tuple[list[str], str]:
    """The Hub license identifiers of the corpus, and a sentence saying why when they are not plain.

    A source of unknown license makes the whole corpus ``unknown``: claiming the license of the
    other parts (or of the translation model) would be wrong.
    """
    sources = manifest.sources()
    unknown = [s["name"] for s in sources if not s.get("license")]
    if unknown:
        return ["unknown"], (f"The license of source {', '.join(unknown)} is not known (the config gives none), "
                             "so the license of the corpus is unknown until you add it to the source's "
                             "`license:` key.")
    licenses: list[str] = []
    for source in sources:
        lic = _hf_license(source.get("license"))
        if lic not in licenses:
            licenses.append(lic)
    mt = manifest.model()
    if manifest.translates() and mt.get("model"):
        mt_license = _hf_license(mt.get("license"))
        if mt_license not in licenses:
            licenses.append(mt_license)
    if "other" in licenses:
        given = {str(s.get("license")) for s in sources} | ({str(mt.get("license"))} if manifest.translates() else set())
        named = sorted(text for text in given if _hf_license(text) == "other")
        return licenses, f"Licenses the Hub has no identifier for are listed as `other`: {', '.join(named)}."
    return licenses, ""


def _hf_license(text: str | None) -> str:
    if not text:
        return "unknown"
    key = text.split()[0].strip().lower()
    return HF_LICENSES.get(key, "other")


def translation_line(manifest: Manifest) -> str:
    """The provenance line on machine translation: the model that ran, or that none did."""
    if not manifest.translates():
        return "no machine translation (every language was imported from the sources)"
    mt = manifest.model()
    info = mt.get("model_info") or {}
    revision = info.get("revision") or mt.get("revision")
    parts = [f"revision {revision}" if revision else "no revision (local model)",
             f"{mt.get('quantization')} on {info.get('device', 'cpu')}"]
    return f"{mt.get('model')} ({', '.join(parts)})"


def size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def front_matter(manifest: Manifest) -> dict[str, Any]:
    langs = manifest.languages
    iso = [L.iso639_1(code) or code for code in langs]
    translates = manifest.translates()
    return {
        "language": list(dict.fromkeys(iso)),
        "language_details": ", ".join(langs),
        "license": card_licenses(manifest)[0],
        "multilinguality": ["multilingual", "translation"] if translates else ["multilingual"],
        "size_categories": [size_category(manifest.total_rows())],
        "source_datasets": [s["name"] for s in manifest.sources()],
        "task_categories": ["question-answering", "text-retrieval"],
        "pretty_name": manifest.name,
        "tags": ["polyqa", "parallel-corpus", "machine-translated"] if translates
        else ["polyqa", "parallel-corpus"],
        # `load_dataset(corpus_dir)` reads every language; `load_dataset(corpus_dir, "deu_Latn")` one.
        "configs": [{"config_name": "default", "default": True,
                     "data_files": [{"split": "train", "path": f"lang=*/*.{_ext(manifest)}"}]}]
        + [{"config_name": code, "data_files": [{"split": "train", "path": f"lang={code}/*.{_ext(manifest)}"}]}
           for code in langs],
    }


def _ext(manifest: Manifest) -> str:
    return "parquet" if manifest.format == "parquet" else "arrow"


def language_rows(manifest: Manifest) -> list[dict[str, str]]:
    """Per language: rows, quality, the answer-sentence rate and the span projection rate of each method
    (the card's language table, and the build flow's table artifact)."""
    answers = manifest.answers_per_language()
    stats: Mapping[str, Any] = manifest.statistics()
    out = []
    for code in manifest.languages:
        s, a = stats.get(code, {}), answers.get(code, {})
        rows = s.get("rows", 0)
        projection = a.get("projection", {})
        with_sentence = a.get("answer_sentence")
        row = {"language": L.name(code), "NLLB code": f"`{code}`", "rows": str(rows),
               "translated": str(s.get("translated", 0)), "quality pass": _pct(s.get("quality_pass", 0), rows),
               "answer sentence": "-" if with_sentence is None else _pct(with_sentence, rows)}
        row.update({f"span {kind}": _pct(projection.get(kind, 0), rows) for kind in PROJECTION_KINDS})
        row["mean passage chars"] = f"{s.get('passage_chars', 0) / rows:.0f}" if rows else "-"
        out.append(row)
    return out


def language_table(manifest: Manifest) -> str:
    """The language rows as a markdown table, then what the columns mean."""
    table = language_rows(manifest)
    head = list(table[0]) if table else ["language"]
    lines = markdown.table(head, ([row[k] for k in head] for row in table))
    lines += ["",
              "*answer sentence*: rows whose `answer_sentence` is set. Passages are translated sentence by",
              "sentence, so a translated row keeps the English answer's sentence index",
              "(`answer_sentence_source` = `aligned`) whether or not the answer span is found: the rate",
              "should equal English's. *span*: how `answer_start` was found: *source* from the source data;",
              "*marker* between markers in a second translation of the answer's sentence with the answer",
              "marked; *exact*, *normalized*, *fuzzy* by searching the separately translated answer in the",
              "aligned sentence, then in the whole passage; *none*: not found, `answer_start` is null."]
    markers = marker_line(manifest)
    if markers:
        lines += ["", markers]
    return "\n".join(lines)


def marker_line(manifest: Manifest) -> str:
    """What became of the marked sentences per language (empty when no marker was used)."""
    parts = []
    answers = manifest.answers_per_language()
    for code in manifest.languages:
        outcomes = answers.get(code, {}).get("markers") or {}
        total = sum(outcomes.values())
        if total:
            parts.append(f"`{code}` " + ", ".join(f"{k.replace('_', ' ')} {_pct(n, total)}"
                                                  for k, n in sorted(outcomes.items(), key=lambda kv: -kv[1])))
    if not parts:
        return ""
    return ("Marker projection, translated rows per outcome (*projected*: markers kept and the span found "
            "in the unmarked sentence; *lost*, *duplicated*, *empty*: the markers could not be read back; "
            "*not in sentence*: the span is not in the unmarked sentence; *not marked*: the answer crosses "
            "a sentence boundary): " + "; ".join(parts) + ".")


def flags_table(manifest: Manifest) -> str:
    stats: Mapping[str, Any] = manifest.statistics()
    flags = sorted({f for s in stats.values() for f in s.get("quality_flags", {})})
    if not flags:
        return "No quality check failed."
    def row(code: str) -> list[str]:
        s = stats.get(code, {})
        return [f"`{code}`", *(_pct(s.get("quality_flags", {}).get(f, 0), s.get("rows", 0)) for f in flags)]

    return "\n".join(markdown.table(["language", *flags], (row(code) for code in manifest.languages)))


def sources_table(manifest: Manifest) -> str:
    head = ["source", "kind", "license", "read", "kept", "quarantined", "duplicates", "excluded (leakage)",
            "outside selected articles"]
    rows = ([s["name"], s["kind"], s.get("license") or "unknown", s.get("read", 0), s.get("kept", 0),
             s.get("quarantined", 0), s.get("duplicates", 0), s.get("leakage_excluded", 0), s.get("title_excluded", 0)]
            for s in manifest.sources())
    return "\n".join(markdown.table(head, rows))


def quarantine_section(manifest: Manifest) -> str:
    rows = manifest.quarantine_rows()
    if not rows:
        return "No rows were quarantined."
    lines = [f"{rows} source rows could not be used and are kept with their reason in `quarantine.arrow`:", ""]
    lines += markdown.table(["reason", "rows"], sorted(manifest.quarantine_reasons().items(), key=lambda kv: -kv[1]))
    return "\n".join(lines)


def loading_snippet(manifest: Manifest, corpus_dir: Path | storage.RemotePath) -> str:
    # The path as the build was given it: a relative output stays relative (to where the build ran).
    pattern = f"{corpus_dir}/lang=*/*.{_ext(manifest)}"
    builder = _ext(manifest)
    langs = manifest.languages
    first = langs[1] if len(langs) > 1 else langs[0]
    if isinstance(corpus_dir, storage.RemotePath):  # the store's settings come from the environment
        return (
            "```python\n"
            "from datasets import load_dataset\n\n"
            f'corpus = load_dataset("{builder}", data_files={{"train": "{pattern}"}}, split="train", streaming=True)\n'
            f'german = corpus.filter(lambda row: row["lang"] == "{first}")\n'
            "print(next(iter(german)))\n\n"
            "# or with pyarrow only\n"
            "import fsspec\n"
            "import pyarrow.dataset as ds\n\n"
            f'fs, root = fsspec.core.url_to_fs("{corpus_dir}")\n'
            f'table = ds.dataset(sorted(fs.glob(root + "/lang=*/*.{builder}")), format="{builder}", '
            "filesystem=fs).to_table()\n"
            "```"
        )
    return (
        "```python\n"
        "from datasets import load_dataset\n\n"
        f'corpus = load_dataset("{builder}", data_files={{"train": "{pattern}"}}, split="train", streaming=True)\n'
        f'german = corpus.filter(lambda row: row["lang"] == "{first}")\n'
        "print(next(iter(german)))\n\n"
        "# or with pyarrow only\n"
        "import glob\n"
        "import pyarrow.dataset as ds\n\n"
        f'table = ds.dataset(sorted(glob.glob("{pattern}")), format="{builder}").to_table()\n'
        "```"
    )


def license_note(manifest: Manifest) -> str:
    mt, translated = manifest.model(), manifest.translates()
    why = card_licenses(manifest)[1]
    if not translated:
        return " ".join(filter(None, ["No row is machine translated.", why]))
    note = " ".join(filter(None, [why, f"Machine-translated rows are outputs of {mt.get('model')}, "
                                       f"licensed {mt.get('license')}."]))
    if "NC" in str(mt.get("license")).upper():
        note += (" That license is non-commercial (NLLB-200 is CC-BY-NC-4.0), so the translated rows, "
                 "and the corpus as a whole, may only be used non-commercially.")
    return note


def render_card(manifest: Manifest, corpus_dir: str | Path | storage.RemotePath) -> str:
    corpus_dir = storage.as_path(corpus_dir)
    template = resources.files("polyqa.data").joinpath("card_template.md").read_text("utf-8")
    mt = manifest.model()
    translation = manifest.translation_totals()
    filters = manifest.filters()
    code = manifest.built_by()
    source_licenses = ", ".join(sorted({s.get("license") or "unknown" for s in manifest.sources()}))
    values = {
        "front_matter": yaml.safe_dump(front_matter(manifest), sort_keys=False, allow_unicode=True).strip(),
        "name": manifest.name,
        "records": manifest.records,
        "n_languages": len(manifest.languages),
        "total_rows": manifest.total_rows(),
        "n_shards": manifest.n_shards,
        "format": manifest.format,
        "shard_rows": manifest.shard_rows,
        "language_table": language_table(manifest),
        "flags_table": flags_table(manifest),
        "thresholds": ", ".join(f"{k}={v}" for k, v in (manifest.config().get("quality") or {}).items())
        or "defaults",
        "sources_table": sources_table(manifest),
        "quarantine": quarantine_section(manifest),
        "leakage_excluded": filters.get("leakage_excluded", 0),
        "leakage_files": ", ".join(filters.get("leakage_guard_files") or []) or "none configured",
        "duplicates": filters.get("duplicates", 0),
        "title_excluded": filters.get("title_excluded", 0),
        "translation_line": translation_line(manifest),
        "decoding": ", ".join(f"{k}={v}" for k, v in (mt.get("decoding") or {}).items())
        if manifest.translates() else "-",
        "segments": translation.get("segments_requested", 0),
        "unique_segments": translation.get("unique_segments", 0),
        "cache_hits": translation.get("cache_hits", 0),
        "source_tokens": translation.get("source_tokens", 0),
        "target_tokens": translation.get("target_tokens", 0),
        "translation_seconds": translation.get("seconds", 0),
        "build_seconds": manifest.build_seconds,
        "code_version": f"polyqa {code.get('polyqa')}" + (f", git {code['git_commit'][:12]}" if code.get("git_commit") else "")
        + (" (uncommitted changes)" if code.get("git_dirty") else ""),
        "source_licenses": source_licenses,
        "license_note": license_note(manifest),
        "snippet": loading_snippet(manifest, corpus_dir),
    }
    return template.format_map(values)


def write_cards(corpus_dir: str | Path | storage.RemotePath, manifest: Manifest,
                cards_dir: str | Path | None) -> list[Path | storage.RemotePath]:
    """Write ``<corpus>/README.md`` and, if ``cards_dir`` is set, ``<cards_dir>/<name>.md``."""
    text = render_card(manifest, corpus_dir).encode("utf-8")
    paths = [storage.as_path(corpus_dir) / "README.md"]
    if cards_dir:
        paths.append(Path(cards_dir) / f"{manifest.name}.md")
    for path in paths:
        atomic_write_bytes(path, text)
    return paths
