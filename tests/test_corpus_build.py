"""The build pipeline end to end with the tiny model: shards, manifest, resume, validation, cards, loading."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import yaml

from polyqa.corpus.cards import license_note, render_card
from polyqa.cli import main as cli_main
from polyqa.corpus.config import BuildConfig, load_config
from polyqa.corpus.ingest import WORK_DIR
from polyqa.corpus.job import BuildJob, build_corpus
from polyqa.corpus.output import CorpusConflictError
from polyqa.corpus.manifest import Manifest
from polyqa.corpus.reader import iter_parallel, read_language, shard_paths
from polyqa.corpus.schema import CORPUS_SCHEMA, PROJECTION_NONE, PROJECTION_SOURCE, QUARANTINE_SCHEMA
from polyqa.corpus.validate import validate_corpus
from polyqa.corpus.writer import read_quarantine, write_shard

LANGS = ["eng_Latn", "deu_Latn", "fra_Latn"]
BAD_ROWS = 3


def sample_subset(path: Path, passages: int = 4) -> Path:
    """The first passages of the embedded sample (5 questions each) plus unusable rows."""
    data = json.loads(resources.files("polyqa.data").joinpath("default_sample.json").read_text("utf-8"))
    data["data"] = data["data"][:passages]
    data["data"].append({"title": "Broken", "paragraphs": [
        {"context": "A short passage.", "qas": [
            {"id": "bad-1", "question": "", "answers": [{"text": "short", "answer_start": 2}]},
            {"id": "bad-2", "question": "Where?", "answers": [{"text": "nowhere", "answer_start": 0}]},
            {"id": "bad-3", "question": "What?", "answers": []},
        ]}]})
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def small_config(tmp: Path, tiny_model, **overrides) -> dict:
    config = {
        "name": "test-corpus",
        "sources": [{"kind": "squad_json", "path": str(sample_subset(tmp / "subset.json")), "name": "subset",
                     "license": "CC0-1.0"}],
        "languages": ["de", "fr"],
        "shard_rows": 8,
        "model": "tiny",
        "tiny_model_dir": str(tiny_model.hf_dir.parent),
        "cache": str(tmp / "translations.sqlite"),
        "decoding": {"beam_size": 1, "max_length_ratio": 1.2, "max_length_extra": 4},
        "card_dir": str(tmp / "cards"),
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("corpus-build")
    config = small_config(tmp, tiny_model)
    corpus = tmp / "corpus"
    manifest = build_corpus(config, corpus)
    return corpus, config, manifest


def copy_corpus(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def test_layout_manifest_and_validation(built):
    corpus, config, manifest = built
    report = validate_corpus(corpus)
    assert report.ok, report.text()
    assert report.rows == {lang: 20 for lang in LANGS}
    assert manifest["languages"] == LANGS and manifest["n_shards"] == 3 and manifest["complete"]
    assert [p.name for p in shard_paths(corpus, "deu_Latn")] == [
        "part-00000-of-00003.arrow", "part-00001-of-00003.arrow", "part-00002-of-00003.arrow"]
    assert sorted(e["rows"] for e in manifest.entries_for("fra_Latn")) == [4, 8, 8]
    assert all(re.fullmatch(r"[0-9a-f]{64}", e["sha256"]) for e in manifest.shards)
    assert manifest["sources"][0]["license"] == "CC0-1.0" and manifest["sources"][0]["kept"] == 20
    assert manifest["filters"]["quarantined"] == BAD_ROWS and manifest["quarantine"]["rows"] == BAD_ROWS
    mt = manifest["mt_model"]
    assert mt["model"] == "tiny" and mt["model_fingerprint"] and mt["decoding"]["beam_size"] == 1
    translation = manifest.translation_totals()
    assert translation["unique_segments"] > 0 and translation["source_tokens"] > 0
    assert manifest["code_version"]["polyqa"] and manifest["build_seconds"] > 0
    assert not (corpus / WORK_DIR).exists()  # staging removed once complete


def test_rows_aligned_scored_and_never_dropped(built):
    corpus, _, _ = built
    english = read_language(corpus, "eng_Latn")
    assert english.schema.equals(CORPUS_SCHEMA, check_metadata=False)
    assert set(english.column("answer_projection").to_pylist()) == {PROJECTION_SOURCE}
    for row in english.to_pylist():
        assert row["passage"][row["answer_start"]:].startswith(row["answer_text"])
        assert row["sentences"][row["answer_sentence"]] in row["passage"]
    shards = list(iter_parallel(corpus, LANGS))
    assert len(shards) == 3
    for shard in shards:
        ids = shard["eng_Latn"].column("qa_id")
        assert all(t.column("qa_id").equals(ids) for t in shard.values())
    german = read_language(corpus, "deu_Latn").to_pylist()
    assert len(german) == 20 and all(r["translated"] for r in german)
    assert {r["answer_sentence_source"] for r in english.to_pylist()} == {"source"}
    for r, en in zip(german, english.to_pylist()):  # random-weight babble: checks fire, rows stay with reasons
        assert r["quality_pass"] == (not r["quality_flags"])
        assert (r["answer_start"] is None) == (r["answer_projection"] == PROJECTION_NONE)
        # the answer sentence comes from alignment, found span or not
        assert (r["answer_sentence"], r["answer_sentence_source"]) == (en["answer_sentence"], "aligned")
    assert any(not r["quality_pass"] for r in german)
    quarantine = read_quarantine(corpus)
    assert quarantine.schema.equals(QUARANTINE_SCHEMA) and quarantine.num_rows == BAD_ROWS
    assert sorted(quarantine.column("field").to_pylist()) == ["answers", "answers", "question"]


def test_loadable_with_datasets_streaming_and_pyarrow(built):
    import datasets

    corpus, _, _ = built
    files = f"{corpus}/lang=*/*.arrow"
    stream = datasets.load_dataset("arrow", data_files={"train": files}, split="train", streaming=True)
    rows = list(stream)
    assert len(rows) == 60 and {r["lang"] for r in rows} == set(LANGS)
    assert set(rows[0]) == set(CORPUS_SCHEMA.names)
    table = ds.dataset(sorted(str(p) for p in corpus.glob("lang=*/*.arrow")), format="arrow").to_table()
    assert table.num_rows == 60
    hive = ds.dataset(str(corpus / "lang=deu_Latn"), format="arrow").to_table()
    assert set(hive.column("lang").to_pylist()) == {"deu_Latn"}


def test_card_front_matter_body_and_working_snippet(built, capsys):
    corpus, config, manifest = built
    card = (Path(config["card_dir"]) / "test-corpus.md").read_text("utf-8")
    assert card == (corpus / "README.md").read_text("utf-8")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["language"] == ["en", "de", "fr"] and "deu_Latn" in front["language_details"]
    assert front["task_categories"] == ["question-answering", "text-retrieval"]
    assert front["size_categories"] == ["n<1K"] and "cc0-1.0" in front["license"]
    assert front["source_datasets"] == ["subset"] and "translation" in front["multilinguality"]
    assert f"{BAD_ROWS} source rows could not be used" in card
    assert "| German | `deu_Latn` | 20 | 20 |" in card and "Known noise" in card
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    exec(compile(snippet, "card-snippet", "exec"), {})
    printed = capsys.readouterr().out
    assert "'lang': 'deu_Latn'" in printed
    nllb = Manifest(json.loads(json.dumps(manifest.data)))
    nllb.set_model({"model": "facebook/nllb-200-distilled-600M", "license": "CC-BY-NC-4.0"})
    assert "non-commercial" in license_note(nllb)
    assert render_card(manifest, corpus) == card


def test_resume_rebuilds_only_missing_or_corrupt_shards(built, tmp_path):
    corpus, config, _ = built
    copy = copy_corpus(corpus, tmp_path)
    deleted = copy / "lang=deu_Latn/part-00001-of-00003.arrow"
    corrupt = copy / "lang=fra_Latn/part-00002-of-00003.arrow"
    deleted.unlink()
    corrupt.write_bytes(corrupt.read_bytes()[:-10] + b"0123456789")
    # a killed run: the manifest lost the last entry of English, and the build is not complete
    manifest = Manifest.load(copy)
    manifest.data["shards"] = [e for e in manifest.shards if not (e["lang"] == "eng_Latn" and e["index"] == 2)]
    manifest["complete"] = False
    manifest.save(copy)
    untouched = {p: p.stat().st_mtime_ns for p in copy.glob("lang=*/*.arrow") if p != corrupt}
    untouched.pop(copy / "lang=eng_Latn/part-00002-of-00003.arrow")
    assert not validate_corpus(copy).ok
    resumed = build_corpus(config, copy)
    assert validate_corpus(copy).ok
    assert all(p.stat().st_mtime_ns == t for p, t in untouched.items())
    assert deleted.exists()
    rebuilt = resumed.shard("deu_Latn", 1)["translation"]
    assert rebuilt["cache_hits"] == rebuilt["unique_segments"] > 0 and rebuilt["translated"] == 0
    assert read_language(copy, "deu_Latn").equals(read_language(corpus, "deu_Latn"))  # deterministic
    # a rerun of a complete corpus verifies and touches nothing
    stamps = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    assert build_corpus(config, copy)["build_seconds"] == resumed["build_seconds"]
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == stamps


def test_a_finished_unit_is_recorded_in_a_file_of_its_own_and_resumed_from(built, tmp_path):
    """Recording a unit writes one small file, never the whole manifest (so the thousandth unit costs what
    the first did); a killed build's records are read back, and none made from other records."""
    corpus, config, _ = built
    copy = copy_corpus(corpus, tmp_path)
    manifest = Manifest.load(copy)
    english_2, german_1 = manifest.shard("eng_Latn", 2), manifest.shard("deu_Latn", 1)
    manifest.data["shards"] = [e for e in manifest.shards if e not in (english_2, german_1)]
    manifest["complete"] = False
    manifest.save(copy)
    whole = (copy / "manifest.json").read_bytes()

    manifest.record_shard(copy, english_2)
    stale = Manifest(json.loads(whole))
    stale["records_sha256"] = "0" * 64  # a unit of an earlier build, from other source records
    stale.record_shard(copy, german_1)
    recorded = copy / WORK_DIR / "recorded"
    assert sorted(p.name for p in recorded.iterdir()) == ["deu_Latn-000001.json", "eng_Latn-000002.json"]
    assert (copy / "manifest.json").read_bytes() == whole  # not rewritten
    loaded = Manifest.load(copy)
    assert loaded.shard("eng_Latn", 2) == english_2 and loaded.shard("deu_Latn", 1) is None
    assert [(e["lang"], e["index"]) for e in loaded.shards] == sorted((e["lang"], e["index"]) for e in loaded.shards)

    kept = (copy / english_2["path"]).stat().st_mtime_ns
    with BuildJob.open(config, copy) as job:
        assert [(u.lang, u.index) for u in job.units] == [("deu_Latn", 1)]
        assert not recorded.exists()  # opening wrote the manifest whole: the records are in it now
        assert Manifest(json.loads((copy / "manifest.json").read_text())).shard("eng_Latn", 2) == english_2
        job.record(job.build_unit(job.units[0]))
        assert (recorded / "deu_Latn-000001.json").is_file()
        job.finish()
    assert not (copy / WORK_DIR).exists() and (copy / english_2["path"]).stat().st_mtime_ns == kept
    assert validate_corpus(copy).ok
    assert read_language(copy, "deu_Latn").equals(read_language(corpus, "deu_Latn"))


def test_other_config_in_same_folder_is_refused(built, tmp_path):
    corpus, config, _ = built
    copy = copy_corpus(corpus, tmp_path)
    other = dict(config, languages=["de"])
    stamps = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    with pytest.raises(CorpusConflictError, match="different configuration"):
        BuildJob.open(other, copy)
    # refused before ingest: the other corpus' files (its quarantine too) are untouched
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == stamps
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("keep me")
    with pytest.raises(CorpusConflictError, match="not deleting"):
        BuildJob.open(config, tmp_path / "plain", overwrite=True)
    assert (tmp_path / "plain" / "notes.txt").read_text() == "keep me"


def test_validate_reports_tampering_and_misalignment(built, tmp_path, capsys):
    corpus, _, _ = built
    copy = copy_corpus(corpus, tmp_path)
    assert cli_main(["validate", str(copy)]) == 0
    # reorder the rows of one shard and record its new checksum: checksums pass, alignment does not
    path = copy / "lang=deu_Latn/part-00000-of-00003.arrow"
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    reordered = table.take(list(range(table.num_rows))[::-1])
    written = write_shard(copy, reordered, lang="deu_Latn", index=0, total=3)
    manifest = Manifest.load(copy)
    manifest.add_shard({**manifest.shard("deu_Latn", 0), **written.as_dict()})
    manifest.save(copy)
    (copy / "lang=fra_Latn/part-00001-of-00003.arrow").write_bytes(b"junk")
    shutil.copy(path, copy / "lang=deu_Latn/part-00009-of-00010.arrow")
    capsys.readouterr()
    assert cli_main(["validate", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "part-00000-of-00003.arrow: not aligned with shard 0" in out
    assert "lang=fra_Latn/part-00001-of-00003.arrow: sha256 does not match" in out
    assert "part-00009-of-00010.arrow: shard file not in the manifest" in out
    assert "language fra_Latn: 12 rows, manifest says 20 records" in out
    assert cli_main(["validate", str(tmp_path / "nothing")]) == 2  # nothing to check: an error, not a report


def test_parallel_import_corpus_without_translation_in_parquet(tmp_path, xquad_r):
    xquad_r_dir = xquad_r.dir
    config = {
        "name": "xquad-r-import",
        "sources": [{"preset": "xquad_r", "path": str(xquad_r_dir), "languages": ["en", "de", "zh"]}],
        "languages": ["de", "zh"], "model": None, "shard_rows": 500, "format": "parquet",
        "dedup_questions": False, "card_dir": None,
    }
    manifest = build_corpus(config, tmp_path / "xq")
    assert validate_corpus(tmp_path / "xq").ok
    assert manifest["records"] == xquad_r.questions and manifest["n_shards"] == math.ceil(xquad_r.questions / 500)
    assert not list((tmp_path / "xq").glob("lang=*/*.arrow"))
    zh = read_language(tmp_path / "xq", "zho_Hans").to_pylist()
    paragraph = json.loads((xquad_r_dir / "zh.json").read_text())["data"][0]["paragraphs"][0]
    assert zh[0]["sentences"] == paragraph["sentences"] and zh[0]["question"] == paragraph["qas"][0]["question"]
    assert {r["answer_projection"] for r in zh} == {PROJECTION_SOURCE} and not any(r["translated"] for r in zh)
    assert "No row is machine translated" in (tmp_path / "xq" / "README.md").read_text()
    import datasets

    loaded = datasets.load_dataset("parquet", data_files=f"{tmp_path}/xq/lang=*/*.parquet", split="train",
                                   streaming=True)
    assert sum(1 for _ in loaded) == 3 * xquad_r.questions
    # a language the import lacks cannot be filled without a model: every record is quarantined
    with pytest.raises(ValueError, match="no usable records"):
        build_corpus(dict(config, languages=["de", "fr"], format="arrow"), tmp_path / "xq2")
    reasons = read_quarantine(tmp_path / "xq2").column("reason").to_pylist()
    assert reasons and all("no text in fra_Latn" in r for r in reasons)


def test_leakage_guard_in_build_reports_excluded(tmp_path, tiny_model, xquad_r_dir):
    en = json.loads((xquad_r_dir / "en.json").read_text())
    leaked = {"data": en["data"][:1]}  # 35 XQuAD questions over 5 passages
    (tmp_path / "leaked.json").write_text(json.dumps(leaked))
    config = small_config(tmp_path, tiny_model, languages=["de"], shard_rows=50, card_dir=None,
                          exclude_passages_from=[str(xquad_r_dir / "en.json")])
    config["sources"].append({"kind": "squad_json", "path": str(tmp_path / "leaked.json"), "name": "leaked"})
    manifest = build_corpus(config, tmp_path / "guarded")
    n_leaked = sum(len(p["qas"]) for p in leaked["data"][0]["paragraphs"])
    assert manifest["filters"]["leakage_excluded"] == n_leaked and manifest["records"] == 20
    assert manifest["sources"][1]["leakage_excluded"] == n_leaked
    assert f"Passages excluded because they occur in evaluation sets: {n_leaked}" in \
        (tmp_path / "guarded" / "README.md").read_text()


def test_cli_build_with_config_and_progress_bar(tmp_path, tiny_model):
    config = small_config(tmp_path, tiny_model, languages=["es"], shard_rows=50)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "polyqa.cli", "build-corpus", "--config", str(tmp_path / "config.yaml"),
                          "--output", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "build test-corpus" in run.stderr and "2/2" in run.stderr  # tqdm bar: 1 shard x 2 languages
    assert "20 QA pairs x 2 languages = 40 rows" in run.stdout
    check = subprocess.run([sys.executable, "-m", "polyqa.cli", "validate", str(tmp_path / "out")],
                           capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0 and "OK" in check.stdout
    bad = subprocess.run([sys.executable, "-m", "polyqa.cli", "build-corpus", "--config", str(tmp_path / "config.yaml"),
                          "--output", str(tmp_path / "out"), "--languages", "xx_Nope"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "error:" in bad.stderr


def test_config_errors_name_the_problem(tmp_path):
    (tmp_path / "bad.yaml").write_text("sources: [polyqa_sample]\nshard_size: 5\n")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['shard_size'\]: .*bad\.yaml"):
        BuildConfig.from_yaml(tmp_path / "bad.yaml")
    default = BuildConfig.default()
    assert default.model == "tiny" and len(default.languages) >= 3 and default.sources == [{"preset": "polyqa_sample"}]
    assert default.fingerprint() == BuildConfig.default().fingerprint()
    assert load_config(dict(default.as_dict(), cache="/elsewhere")).fingerprint() == default.fingerprint()
    # command-line overrides are validated with the file they override
    (tmp_path / "good.yaml").write_text("sources: [polyqa_sample]\nshard_rows: 5\n")
    assert load_config(tmp_path / "good.yaml", {"shard_rows": 7}).shard_rows == 7
    with pytest.raises(ValueError, match=r"shard_rows must be >= 1, got 0: .*good\.yaml"):
        load_config(tmp_path / "good.yaml", {"shard_rows": 0})


def test_import_parallel_command(tmp_path, xquad_r, capsys):
    kept = xquad_r.questions - xquad_r.duplicates
    code = cli_main(["import-parallel", str(xquad_r.dir), "--output", str(tmp_path / "xq"), "--languages", "en,ar",
                     "--license", "CC-BY-SA-4.0", "--cards-dir", str(tmp_path / "cards"), "--shard-rows", "700"])
    assert code == 0 and f"{kept} QA pairs x 2 languages; quarantined {xquad_r.duplicates}" in capsys.readouterr().out
    assert validate_corpus(tmp_path / "xq").rows == {"eng_Latn": kept, "arb_Arab": kept}
    card = (tmp_path / "cards" / "xquad-r.md").read_text()
    assert "cc-by-sa-4.0" in card and "duplicate_question" in card


def test_changed_sources_are_not_mixed_with_old_shards(built, tmp_path):
    corpus, config, _ = built
    copy = copy_corpus(corpus, tmp_path)
    manifest = Manifest.load(copy)
    manifest["complete"] = False  # as if killed before finishing; then the source changed
    manifest.save(copy)
    source = Path(config["sources"][0]["path"])
    changed = dict(config, sources=[dict(config["sources"][0], path=str(tmp_path / "changed.json"))])
    data = json.loads(source.read_text())
    data["data"][0]["paragraphs"][0]["qas"][0]["question"] = "What guides ships at night?"
    (tmp_path / "changed.json").write_text(json.dumps(data))
    changed["sources"][0]["name"] = config["sources"][0]["name"]
    # same config fingerprint would be needed to resume; a different path is another config
    with pytest.raises(CorpusConflictError):
        build_corpus(changed, copy)
    source_backup = source.read_text()
    try:
        source.write_text(json.dumps(data))  # same config, other content
        rebuilt = build_corpus(config, copy)
    finally:
        source.write_text(source_backup)
    assert validate_corpus(copy).ok
    assert rebuilt["records_sha256"] != Manifest.load(corpus)["records_sha256"]
    questions = read_language(copy, "eng_Latn").column("question").to_pylist()
    assert "What guides ships at night?" in questions


def test_writer_refuses_bad_rows_and_leaves_no_files(tmp_path):
    row = {name: None for name in CORPUS_SCHEMA.names}
    with pytest.raises(ValueError, match="do not fit the corpus schema: .*'qa_id' with null values"):
        write_shard(tmp_path, pa.Table.from_pylist([row], schema=CORPUS_SCHEMA), lang="deu_Latn", index=0, total=1)
    with pytest.raises(ValueError, match="rows do not fit the corpus schema"):
        write_shard(tmp_path, [{"qa_id": 3}], lang="deu_Latn", index=0, total=1)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_source_article_selection_is_counted(tmp_path, xquad_r):
    xquad_r_dir, total = xquad_r.dir, xquad_r.questions
    """`titles` / `exclude_titles` on a source select articles (held-out splits) and are counted."""
    articles = json.loads((xquad_r_dir / "en.json").read_text())["data"]
    chosen = [articles[0]["title"], articles[3]["title"]]
    expected = sum(len(p["qas"]) for a in articles if a["title"] in chosen for p in a["paragraphs"])
    source = {"preset": "xquad_r", "path": str(xquad_r_dir), "languages": ["en", "de"]}
    config = {"name": "xq-split", "languages": ["de"], "model": None, "shard_rows": 500,
              "dedup_questions": False, "card_dir": None}
    kept = build_corpus(dict(config, sources=[dict(source, titles=chosen)]), tmp_path / "kept")
    assert kept["records"] == expected
    assert kept["filters"]["title_excluded"] == total - expected
    assert set(read_language(tmp_path / "kept", "deu_Latn").column("title").to_pylist()) == set(chosen)
    assert f"outside the selected ones (source `titles` /\n  `exclude_titles`, e.g. a held-out evaluation split): {total - expected}" in (
        tmp_path / "kept" / "README.md").read_text()
    rest = build_corpus(dict(config, sources=[dict(source, exclude_titles=chosen)]), tmp_path / "rest")
    assert rest["records"] == total - expected and rest["filters"]["title_excluded"] == expected
    assert not set(read_language(tmp_path / "rest", "eng_Latn").column("title").to_pylist()) & set(chosen)


def test_manifest_has_translation_work_per_language(built):
    corpus, _, _ = built
    stored = json.loads((corpus / "manifest.json").read_text("utf-8"))["translation"]
    assert set(stored) == {"totals", "per_language"}
    manifest = Manifest.load(corpus)
    per_language, totals = manifest.translation_per_language(), manifest.translation_totals()
    assert set(per_language) == {"deu_Latn", "fra_Latn"}
    for lang, counts in per_language.items():
        assert counts["translated"] > 0 and counts["source_tokens"] > 0 and counts["target_tokens"] > 0, lang
        assert counts["unique_segments"] == counts["cache_hits"] + counts["translated"]
        assert counts["translated"] == sum(e["translation"]["translated"] for e in manifest.entries_for(lang))
    for key, total in totals.items():
        assert sum(counts[key] for counts in per_language.values()) == pytest.approx(total, abs=1e-9), key
    quality = manifest.quality_per_language()
    assert quality["eng_Latn"] == {"rows": 20, "quality_pass": 20, "quality_flags": {}}
    assert quality["deu_Latn"]["rows"] == 20
    assert sum(manifest.quarantine_reasons().values()) == manifest.quarantine_rows() == BAD_ROWS


def test_cli_refresh_rebuilds_a_changed_config_and_leaves_an_unchanged_one(tmp_path, tiny_model, capsys):
    config = small_config(tmp_path, tiny_model, languages=["de"], shard_rows=50)
    path, out = tmp_path / "config.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(config))
    refresh = ["build-corpus", "--config", str(path), "--output", str(out), "--no-progress", "--refresh"]
    assert cli_main(refresh) == 0  # nothing there yet: a plain build
    first = Manifest.load(out)
    german = read_language(out, "deu_Latn")
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert cli_main(refresh) == 0  # unchanged and complete: left alone
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    path.write_text(yaml.safe_dump(dict(config, languages=["de", "fr"])))
    capsys.readouterr()
    assert cli_main(refresh[:-1]) == 2  # a changed config without --refresh is refused
    assert "different configuration" in capsys.readouterr().err
    assert cli_main(refresh) == 0
    second = Manifest.load(out)
    assert second["config_fingerprint"] != first["config_fingerprint"] and second.complete
    assert second.languages == ["eng_Latn", "deu_Latn", "fra_Latn"] and validate_corpus(out).ok
    # the text translated before comes from the cache; only the new language is translated
    work = second.translation_per_language()
    assert work["deu_Latn"]["translated"] == 0
    assert work["deu_Latn"]["cache_hits"] == first.translation_per_language()["deu_Latn"]["translated"] > 0
    assert work["fra_Latn"]["translated"] > 0
    assert read_language(out, "deu_Latn").equals(german)


def test_default_paths_follow_polyqa_home(tmp_path, monkeypatch):
    from polyqa.commands.translate import _default_cache_path
    from polyqa.translate.convert import default_models_dir

    home = tmp_path / "home"
    monkeypatch.setenv("POLYQA_HOME", str(home))
    for config in (BuildConfig(), BuildConfig.default()):
        assert config.models_path == home / "models"
        assert config.tiny_model_path == home / "models" / "tiny-nllb"
        assert config.cache_path == home / "translations.sqlite"
    assert default_models_dir() == home / "models" and _default_cache_path() == home / "translations.sqlite"
    fingerprint = BuildConfig.default().fingerprint()
    monkeypatch.setenv("POLYQA_HOME", str(tmp_path / "elsewhere"))
    assert BuildConfig.default().cache_path == tmp_path / "elsewhere" / "translations.sqlite"
    assert BuildConfig.default().fingerprint() == fingerprint  # where caches live is not content
    monkeypatch.delenv("POLYQA_HOME")
    assert BuildConfig().models_path == Path.home() / ".cache" / "polyqa" / "models"


def test_units_built_in_another_process_send_back_only_their_record(tmp_path, tiny_model):
    """What a Dask worker does: build_unit(config, output, unit) builds and writes the shard there."""
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    from polyqa.corpus.job import UnitResult, build_unit

    job = BuildJob.open(small_config(tmp_path, tiny_model, shard_rows=50, card_dir=None), tmp_path / "corpus")
    assert [(u.index, u.lang) for u in job.units] == [(0, "eng_Latn"), (0, "deu_Latn"), (0, "fra_Latn")]
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(build_unit, *zip(*[(job.config, str(job.output), u) for u in job.units])))
    for unit, result in zip(job.units, results):
        assert isinstance(result, UnitResult) and (result.index, result.lang) == (unit.index, unit.lang)
        assert len(pickle.dumps(result)) < 8_000  # counts and checksums, no rows
        assert (job.output / result.shard.path).exists()  # written by the process that built it
        job.record(result)
    manifest = job.finish()
    assert validate_corpus(job.output).ok and manifest.complete
    assert manifest.model()["model_fingerprint"]  # the worker's engine description came back
    assert manifest.translation_per_language()["fra_Latn"]["translated"] > 0
