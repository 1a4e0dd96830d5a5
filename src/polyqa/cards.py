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
from polyqa.corpus.manifest import Manifest
from polyqa.corpus.schema import PROJECTION_KINDS
from polyqa.corpus.writer import atomic_write_bytes

# Hugging Face license identifiers for the licenses polyqa knows.
HF_LICENSES = {
    "cc0-1.0": "cc0-1.0", "cc-by-4.0": "cc-by-4.0", "cc-by-sa-4.0": "cc-by-sa-4.0",
    "cc-by-sa-3.0": "cc-by-sa-3.0", "cc-by-nc-4.0": "cc-by-nc-4.0", "apache-2.0": "apache-2.0",
    "mit": "mit",
}


def _hf_license(text: str | None) -> str | None:
    if not text:
        return None
    key = text.split()[0].strip().lower()
    return HF_LICENSES.get(key, "other")


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
    licenses = []
    for source in manifest.sources():
        lic = _hf_license(source.get("license"))
        if lic and lic not in licenses:
            licenses.append(lic)
    mt = manifest.model()
    mt_license = _hf_license(mt.get("license")) if mt.get("model") else None
    if mt_license and mt_license not in licenses and translates:
        licenses.append(mt_license)
    return {
        "language": list(dict.fromkeys(iso)),
        "language_details": ", ".join(langs),
        "license": licenses or ["other"],
        "multilinguality": ["multilingual", "translation"] if translates else ["multilingual"],
        "size_categories": [size_category(manifest.total_rows())],
        "source_datasets": [s["name"] for s in manifest.sources()],
        "task_categories": ["question-answering", "text-retrieval"],
        "pretty_name": manifest.name,
        "tags": ["polyqa", "parallel-corpus", "machine-translated"] if translates
        else ["polyqa", "parallel-corpus"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": f"lang=*/*.{_ext(manifest)}"}]}],
    }


def _ext(manifest: Manifest) -> str:
    return "parquet" if manifest.format == "parquet" else "arrow"


def language_table(manifest: Manifest) -> str:
    stats: Mapping[str, Any] = manifest.statistics()
    head = ("| language | NLLB code | rows | translated | quality pass | "
            + " | ".join(f"answer {k}" for k in PROJECTION_KINDS) + " | mean passage chars |")
    lines = [head, "|" + "---|" * (6 + len(PROJECTION_KINDS))]
    for code in manifest.languages:
        s = stats.get(code, {})
        rows = s.get("rows", 0)
        projection = s.get("projection", {})
        cells = [L.name(code), f"`{code}`", str(rows), str(s.get("translated", 0)),
                 _pct(s.get("quality_pass", 0), rows)]
        cells += [_pct(projection.get(kind, 0), rows) for kind in PROJECTION_KINDS]
        cells.append(f"{s.get('passage_chars', 0) / rows:.0f}" if rows else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flags_table(manifest: Manifest) -> str:
    stats: Mapping[str, Any] = manifest.statistics()
    flags = sorted({f for s in stats.values() for f in s.get("quality_flags", {})})
    if not flags:
        return "No quality check failed."
    lines = ["| language | " + " | ".join(flags) + " |", "|" + "---|" * (len(flags) + 1)]
    for code in manifest.languages:
        s = stats.get(code, {})
        rows = s.get("rows", 0)
        lines.append(f"| `{code}` | " + " | ".join(_pct(s.get("quality_flags", {}).get(f, 0), rows) for f in flags) + " |")
    return "\n".join(lines)


def sources_table(manifest: Manifest) -> str:
    lines = ["| source | kind | license | read | kept | quarantined | duplicates | excluded (leakage) "
             "| outside selected articles |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in manifest.sources():
        lines.append(f"| {s['name']} | {s['kind']} | {s.get('license') or 'unknown'} | {s.get('read', 0)} | "
                     f"{s.get('kept', 0)} | {s.get('quarantined', 0)} | {s.get('duplicates', 0)} | "
                     f"{s.get('leakage_excluded', 0)} | {s.get('title_excluded', 0)} |")
    return "\n".join(lines)


def quarantine_section(manifest: Manifest) -> str:
    rows = manifest.quarantine_rows()
    if not rows:
        return "No rows were quarantined."
    lines = [f"{rows} source rows could not be used and are kept with their reason in `quarantine.arrow`:", "",
             "| reason | rows |", "|---|---|"]
    for reason, count in sorted(manifest.quarantine_reasons().items(), key=lambda kv: -kv[1]):
        lines.append(f"| {reason} | {count} |")
    return "\n".join(lines)


def loading_snippet(manifest: Manifest, corpus_dir: Path) -> str:
    # The path as the build was given it: a relative output stays relative (to where the build ran).
    pattern = f"{corpus_dir}/lang=*/*.{_ext(manifest)}"
    builder = _ext(manifest)
    langs = manifest.languages
    first = langs[1] if len(langs) > 1 else langs[0]
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


def license_note(mt: Mapping[str, Any], translated: bool) -> str:
    if not translated:
        return "No row is machine translated."
    note = f"Machine-translated rows are outputs of {mt.get('model')}, licensed {mt.get('license')}."
    if "NC" in str(mt.get("license")).upper():
        note += (" That license is non-commercial (NLLB-200 is CC-BY-NC-4.0), so the translated rows, "
                 "and the corpus as a whole, may only be used non-commercially.")
    return note


def render_card(manifest: Manifest, corpus_dir: str | Path) -> str:
    corpus_dir = Path(corpus_dir)
    template = resources.files("polyqa.data").joinpath("card_template.md").read_text("utf-8")
    mt = manifest.model()
    translation = manifest.translation_totals()
    filters = manifest.filters()
    code = manifest.built_by()
    source_licenses = ", ".join(sorted({s.get("license") or "unknown" for s in manifest.sources()}))
    translated = manifest.translates()
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
        "mt_model": mt.get("model") if translated else "none (no row is machine translated)",
        "mt_revision": (mt.get("model_info") or {}).get("revision") or mt.get("revision") or "-",
        "mt_license": mt.get("license") if translated else "-",
        "quantization": (mt.get("model_info") or {}).get("quantization") or mt.get("quantization"),
        "decoding": ", ".join(f"{k}={v}" for k, v in (mt.get("decoding") or {}).items()) or "-",
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
        "license_note": license_note(mt, translated),
        "snippet": loading_snippet(manifest, corpus_dir),
    }
    return template.format_map(values)


def write_cards(corpus_dir: str | Path, manifest: Manifest, cards_dir: str | Path | None) -> list[Path]:
    """Write ``<corpus>/README.md`` and, if ``cards_dir`` is set, ``<cards_dir>/<name>.md``."""
    text = render_card(manifest, corpus_dir).encode("utf-8")
    paths = [Path(corpus_dir) / "README.md"]
    if cards_dir:
        paths.append(Path(cards_dir) / f"{manifest.name}.md")
    for path in paths:
        atomic_write_bytes(path, text)
    return paths
