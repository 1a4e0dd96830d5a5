"""``polyqa validate``: check a corpus against its manifest and the corpus contract.

Checks: the manifest (present, complete), every (language, shard) listed and on
disk with its sha256 and row count, no stray shard files, the exact
CORPUS_SCHEMA, alignment (shard k of every language has the English qa_ids in
the same order), row invariants (lang column, answer offsets, sentence offsets,
projection kinds, answer sentence and its source; an aligned answer sentence
is the English row's) and counts (rows per language, quarantine rows and reasons, filter
sums, translation work per language against its totals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.ipc as ipc

from polyqa import storage
from polyqa.corpus.manifest import MANIFEST_FILE, Manifest
from polyqa.corpus.reader import SHARD_RE
from polyqa.corpus.schema import (
    CORPUS_SCHEMA,
    PROJECTION_KINDS,
    PROJECTION_NONE,
    SENTENCE_ALIGNED,
    SENTENCE_NONE,
    SENTENCE_SOURCE,
    SENTENCE_SOURCES,
)
from polyqa.corpus.writer import QUARANTINE_FILE, ids_digest, open_arrow, read_quarantine, sha256_file, temporary_files
from polyqa.storage import AnyPath, RemotePath

MAX_ROW_ERRORS = 20  # per shard, so a broken corpus gives a readable report


@dataclass
class ValidationReport:
    corpus_dir: AnyPath
    errors: list[str] = field(default_factory=list)
    checked_shards: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # leftovers of an interrupted build; not errors

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self) -> str:
        head = f"{self.corpus_dir}: " + ("OK" if self.ok else f"{len(self.errors)} problem(s)")
        lines = [head, f"  shards checked: {self.checked_shards}"]
        lines += [f"  rows {lang}: {n}" for lang, n in sorted(self.rows.items())]
        lines += [f"  ERROR {e}" for e in self.errors]
        lines += [f"  NOTE {n}" for n in self.notes]
        return "\n".join(lines)


def _read_table(path: AnyPath) -> pa.Table:
    if path.suffix == ".parquet":
        files, filesystem = storage.arrow_source([path])
        return ds.dataset(files[0], format="parquet", filesystem=filesystem).to_table()
    with open_arrow(path) as source:
        return ipc.open_file(source).read_all()


def _readable_rows(path: AnyPath) -> tuple[int, str | None]:
    """Rows a damaged shard still yields, and why it cannot be read whole (None when it can)."""
    try:
        return _read_table(path).num_rows, None
    except (pa.ArrowException, OSError, ValueError) as exc:
        problem = str(exc).splitlines()[0][:200]
    rows = 0
    if path.suffix != ".parquet":  # an Arrow file is "ARROW1" + padding, then a stream: count its whole batches
        try:
            with (path.open("rb") if isinstance(path, RemotePath) else open(path, "rb")) as f:
                f.seek(8)
                reader = ipc.open_stream(pa.BufferReader(f.read()))
                for batch in reader:
                    batch.validate(full=True)
                    rows += batch.num_rows
        except (pa.ArrowException, OSError, ValueError):
            pass
    return rows, problem


def _damage(path: AnyPath, entry: dict) -> str:
    """What is wrong with a shard whose checksum fails: size, and the rows it really holds."""
    parts = []
    size = path.stat().st_size
    if size != entry.get("bytes"):
        parts.append(f"{size} bytes, manifest says {entry.get('bytes')}")
    rows, problem = _readable_rows(path)
    if problem is None:
        parts.append(f"readable, {rows} rows, manifest says {entry['rows']}")
    else:
        parts.append(f"unreadable ({problem}); {rows} of {entry['rows']} rows readable")
    return "; ".join(parts)


def manifest_problem(manifest: Manifest) -> str | None:
    """Why a manifest that is valid JSON still cannot be used (entries of the wrong shape), or None."""
    for key, kind in (("shards", list), ("languages", list), ("n_shards", int), ("records", int)):
        value = manifest.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return f"field {key!r} is {type(value).__name__}, not {kind.__name__}"
    for i, entry in enumerate(manifest.get("shards") or []):
        if not isinstance(entry, dict):
            return f"shards[{i}] is not an object"
        for key, kind in (("lang", str), ("index", int), ("path", str), ("sha256", str), ("rows", int)):
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                return f"shards[{i}] has no valid {key!r}"
    return None


def check_rows(table: pa.Table, lang: str, where: str, english: list[int | None] | None = None) -> list[str]:
    """Row invariants of one shard; at most MAX_ROW_ERRORS messages.

    ``english``: the answer_sentence of the English shard's rows (same order), which an
    ``aligned`` answer sentence must equal.
    """
    errors: list[str] = []
    for name in CORPUS_SCHEMA.names:
        if not CORPUS_SCHEMA.field(name).nullable and table.column(name).null_count:
            errors.append(f"{where}: column {name!r} has {table.column(name).null_count} nulls")
    for i, row in enumerate(table.to_pylist()):
        if len(errors) >= MAX_ROW_ERRORS:
            errors.append(f"{where}: more errors not shown")
            break
        at = f"{where} row {i} (qa_id {row['qa_id']})"
        if row["lang"] != lang:
            errors.append(f"{at}: field 'lang' is {row['lang']!r}, expected {lang!r}")
        if row["answer_projection"] not in PROJECTION_KINDS:
            errors.append(f"{at}: field 'answer_projection' is {row['answer_projection']!r}")
        start, passage = row["answer_start"], row["passage"]
        if (start is None) != (row["answer_projection"] == PROJECTION_NONE):
            errors.append(f"{at}: field 'answer_start' is {start!r} with projection {row['answer_projection']!r}")
        if start is not None and passage[start:start + len(row["answer_text"] or "")] != row["answer_text"]:
            errors.append(f"{at}: field 'answer_text' {row['answer_text']!r} is not at answer_start {start}")
        sentences, starts = row["sentences"], row["sentence_starts"]
        if len(sentences) != len(starts):
            errors.append(f"{at}: fields 'sentences' and 'sentence_starts' differ in length")
        elif any(passage[s:s + len(t)] != t for s, t in zip(starts, sentences)):
            errors.append(f"{at}: field 'sentence_starts' does not locate the sentences in the passage")
        index, origin = row["answer_sentence"], row["answer_sentence_source"]
        if origin not in SENTENCE_SOURCES:
            errors.append(f"{at}: field 'answer_sentence_source' is {origin!r}")
        elif (index is None) != (origin == SENTENCE_NONE):
            errors.append(f"{at}: field 'answer_sentence' is {index!r} with answer_sentence_source {origin!r}")
        elif origin == SENTENCE_ALIGNED and not row["translated"] or origin == SENTENCE_SOURCE and row["translated"]:
            errors.append(f"{at}: field 'answer_sentence_source' is {origin!r} but translated is {row['translated']}")
        elif origin == SENTENCE_ALIGNED and english is not None and i < len(english) and english[i] != index:
            errors.append(f"{at}: field 'answer_sentence' is {index}, the English row's is {english[i]}")
        if index is not None and not 0 <= index < len(sentences):
            errors.append(f"{at}: field 'answer_sentence' {index} is outside the {len(sentences)} sentences")
        if row["quality_pass"] == bool(row["quality_flags"]):
            errors.append(f"{at}: field 'quality_pass' contradicts quality_flags {row['quality_flags']}")
    return errors


def validate_corpus(corpus_dir: str | Path | RemotePath) -> ValidationReport:
    root = storage.as_path(corpus_dir)
    report = ValidationReport(root)
    errors = report.errors
    if not (root / MANIFEST_FILE).exists():
        errors.append(f"{root / MANIFEST_FILE}: missing; not a polyqa corpus or the build never started")
        return report
    try:
        manifest = Manifest.load(root)
    except ValueError as exc:
        errors.append(f"{exc}; the next build sets it aside and builds the corpus again")
        return report
    assert manifest is not None
    for key in manifest.missing_keys():
        errors.append(f"{root / MANIFEST_FILE}: field {key!r} missing")
    problem = manifest_problem(manifest)
    if problem is not None:
        errors.append(f"{root / MANIFEST_FILE}: {problem}")
    if errors:
        return report
    if not manifest.complete:
        errors.append(f"{root / MANIFEST_FILE}: build not complete (rerun the same build command to resume)")
    languages, n_shards, records = manifest.languages, manifest.n_shards, manifest.records
    listed = {(e["lang"], e["index"]): e for e in manifest.shards}
    expected_files = set()
    english_ids: dict[int, list[str]] = {}
    english_sentences: dict[int, list[int | None]] = {}
    for lang in languages:
        rows = 0
        for k in range(n_shards):
            entry = listed.get((lang, k))
            if entry is None:
                errors.append(f"shard {k} of {lang}: not in the manifest")
                continue
            path = root / entry["path"]
            expected_files.add(path.resolve())
            where = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            if not path.exists():
                errors.append(f"{where}: file missing")
                continue
            report.checked_shards += 1
            if sha256_file(path) != entry["sha256"]:
                errors.append(f"{where}: sha256 does not match the manifest (file changed or damaged: "
                              f"{_damage(path, entry)}); the same build command rebuilds it")
                continue
            try:
                table = _read_table(path)
            except (pa.ArrowInvalid, OSError) as exc:
                errors.append(f"{where}: unreadable: {exc}")
                continue
            if not table.schema.equals(CORPUS_SCHEMA, check_metadata=False):
                errors.append(f"{where}: schema differs from CORPUS_SCHEMA: {table.schema}")
                continue
            if table.num_rows != entry["rows"]:
                errors.append(f"{where}: {table.num_rows} rows, manifest says {entry['rows']}")
            rows += table.num_rows
            ids = table.column("qa_id").to_pylist()
            if ids_digest(ids) != entry.get("qa_ids_sha256"):
                errors.append(f"{where}: qa_id digest differs from the manifest")
            if k not in english_ids:
                english_ids[k] = ids
                english_sentences[k] = table.column("answer_sentence").to_pylist()
            elif ids != english_ids[k]:
                errors.append(f"{where}: not aligned with shard {k} of {languages[0]} (qa_ids differ)")
            errors.extend(check_rows(table, lang, where, english_sentences.get(k) if lang != languages[0] else None))
        report.rows[lang] = rows
        if rows != records:
            errors.append(f"language {lang}: {rows} rows, manifest says {records} records")
    for extra in sorted((e for e in listed if e[0] not in languages or e[1] >= n_shards)):
        errors.append(f"manifest lists shard {extra[1]} of {extra[0]}, outside languages/shard count")
    for path in root.glob("lang=*/*"):
        if SHARD_RE.match(path.name) and path.resolve() not in expected_files:
            errors.append(f"{path.relative_to(root)}: shard file not in the manifest")
    expected_sha = (manifest.get("quarantine") or {}).get("sha256")
    if expected_sha and (root / QUARANTINE_FILE).is_file() and sha256_file(root / QUARANTINE_FILE) != expected_sha:
        errors.append(f"{QUARANTINE_FILE}: sha256 does not match the manifest (file changed or damaged); "
                      "the same build command rewrites it")
    try:
        q_rows = read_quarantine(root).num_rows if (root / QUARANTINE_FILE).exists() else 0
    except (pa.ArrowException, OSError) as exc:
        errors.append(f"{QUARANTINE_FILE}: unreadable ({str(exc).splitlines()[0][:200]})")
        q_rows = manifest.quarantine_rows()
    if q_rows != manifest.quarantine_rows():
        errors.append(f"{QUARANTINE_FILE}: {q_rows} rows, manifest says {manifest.quarantine_rows()}")
    if sum(manifest.quarantine_reasons().values()) != manifest.quarantine_rows():
        errors.append("manifest quarantine: the counts per reason do not add up to its rows")
    per_language = manifest.translation_per_language()
    for key, total in manifest.translation_totals().items():
        if not key.endswith("seconds") and sum(counts.get(key, 0) for counts in per_language.values()) != total:
            errors.append(f"manifest translation: {key} per language does not add up to the total {total}")
    filters = manifest.filters()
    if filters and filters.get("kept") != records:
        errors.append(f"manifest filters: kept {filters.get('kept')} != records {records}")
    if filters and filters.get("read") != filters.get("kept", 0) + filters.get("quarantined", 0) + filters.get(
            "leakage_excluded", 0):
        errors.append("manifest filters: read != kept + quarantined + leakage_excluded")
    if (root / "_work").exists() and manifest.complete:
        report.notes.append("_work/: staging area left by an interrupted build; the next build removes it")
    missing = [e["translations"]["path"] for e in manifest.shards
               if e.get("translations") and not (root / e["translations"]["path"]).is_file()]
    if missing:  # the corpus is whole without them; a rebuild elsewhere would translate their segments again
        report.notes.append(f"{len(missing)} parts of the translation store are missing ({', '.join(missing[:5])}); "
                            "a rebuild on another machine translates their segments again")
    leftovers = temporary_files(root)
    if leftovers:
        report.notes.append(f"{len(leftovers)} temporary files of an interrupted build "
                            f"({', '.join(str(p.relative_to(root)) for p in leftovers[:5])}); "
                            "the next build removes them")
    return report
