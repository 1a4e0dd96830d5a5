"""What a user must be able to trust of a corpus build, each case a test.

- nothing of the user's is deleted (folders polyqa did not create, --overwrite, an edited card);
- one writer per corpus (a second build refuses naming the holder, or waits);
- a build killed anywhere (command, flow, flow on Dask, a task failing once) resumes to the
  same bytes, rebuilds none of the shards finished before the kill, and leaves no temporary files;
- damaged shards, quarantine and manifests are named by `polyqa validate` and repaired by a rebuild;
- settings out of range are refused before anything is written.

Kills are real SIGKILLs of a subprocess (its whole process group, Dask workers included),
sent when the manifest lists enough finished shards, or while ingest is reading a source fed
through a named pipe (so the moment is exact, not a race).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import re

import pytest
import yaml

from polyqa.cli import main as cli_main
from polyqa.corpus.config import load_config
from polyqa.corpus.job import BuildJob, build_corpus
from polyqa.corpus.output import MARKER_FILE, CorpusConflictError, ManifestDamagedWarning, read_marker
from polyqa.corpus.manifest import Manifest
from polyqa.corpus.reader import SHARD_RE
from polyqa.corpus.validate import validate_corpus
from polyqa.corpus.writer import read_quarantine, temporary_files
from polyqa.errors import ConfigError
from polyqa.locking import HOLDER_FILE, OutputLock, OutputLockedError

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
ARTICLES = 20  # 100 QA pairs of the embedded sample (and 2 unusable rows)
SHARD_ROWS = 5  # 20 shards x 3 languages = 60 units: time to kill between them
UNITS = 60


def write_records(path: Path) -> Path:
    """The embedded sample's first articles as JSONL, plus two rows the quarantine keeps."""
    sample = json.loads(resources.files("polyqa.data").joinpath("default_sample.json").read_text("utf-8"))
    lines = [{"id": qa["id"], "title": article["title"], "question": qa["question"], "passage": paragraph["context"],
              "answers": qa["answers"]}
             for article in sample["data"][:ARTICLES] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    lines.insert(7, {"id": "bad-type", "question": 7, "passage": "A passage.", "answers": ["A"]})
    lines.insert(30, {"id": "bad-answer", "question": "Where?", "passage": "A passage.", "answers": ["nowhere"]})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@dataclass
class World:
    """The source, the tiny model and an uninterrupted reference build every test compares with."""

    root: Path
    source: Path
    reference: Path
    tiny_model_dir: Path

    def config(self, cache: Path, source: Path | None = None) -> dict:
        return {"name": "reliability",
                "sources": [{"kind": "jsonl", "path": str(source or self.source), "name": "sample",
                             "license": "CC0-1.0"}],
                "languages": ["de", "fr"], "shard_rows": SHARD_ROWS, "model": "tiny",
                "tiny_model_dir": str(self.tiny_model_dir), "cache": str(cache),
                "decoding": {"beam_size": 1, "max_length_ratio": 1.2, "max_length_extra": 4}, "card_dir": None}

    def config_file(self, tmp: Path, cache: Path | None = None, source: Path | None = None) -> Path:
        path = tmp / "config.yaml"
        path.write_text(yaml.safe_dump(self.config(cache or tmp / "cache.sqlite", source)), encoding="utf-8")
        return path

    def copy(self, tmp: Path) -> Path:
        target = tmp / "corpus"
        shutil.copytree(self.reference, target)
        return target


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model) -> World:
    root = tmp_path_factory.mktemp("reliability")
    world = World(root, write_records(root / "records.jsonl"), root / "reference", tiny_model.hf_dir.parent)
    manifest = build_corpus(world.config(root / "reference.sqlite"), world.reference)
    assert manifest.n_shards * 3 == UNITS and manifest.quarantine_rows() == 2
    return world


@pytest.fixture(scope="module")
def flow_module():
    sys.path.insert(0, str(REPO))
    try:
        from flows import build_corpus as module
    finally:
        sys.path.remove(str(REPO))
    return module


# -- helpers ------------------------------------------------------------------------------------

def shard_bytes(corpus: Path) -> dict[str, bytes]:
    return {str(p.relative_to(corpus)): p.read_bytes() for p in sorted(corpus.glob("lang=*/*"))
            if SHARD_RE.match(p.name)}


def quarantine_rows(corpus: Path) -> list[dict]:
    """The quarantine without its `source` column (a file path, which some tests change)."""
    return read_quarantine(corpus).drop_columns(["source"]).to_pylist()


def recorded(corpus: Path) -> dict[tuple[str, int], dict]:
    """Shards the manifest lists as finished (none while it is absent or being replaced)."""
    try:
        manifest = Manifest.load(corpus)
    except (ValueError, OSError):
        return {}
    return {(e["lang"], e["index"]): e for e in manifest.shards} if manifest else {}


def file_identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns  # a rewrite (temporary file renamed over it) changes both


def assert_like_reference(world: World, corpus: Path) -> None:
    report = validate_corpus(corpus)
    assert report.ok and not report.notes, report.text()
    assert shard_bytes(corpus) == shard_bytes(world.reference)
    assert quarantine_rows(corpus) == quarantine_rows(world.reference)
    assert not temporary_files(corpus) and not (corpus / "_work").exists() and not (corpus / HOLDER_FILE).exists()


def is_polyqa_card(corpus: Path) -> bool:
    card = (corpus / "README.md").read_bytes()
    return hashlib.sha256(card).hexdigest() in read_marker(corpus)["cards"] and card.startswith(b"---\n")


def resume(config: dict, corpus: Path) -> list[tuple[str, int]]:
    """Resume in this process, as `polyqa build-corpus` does; returns the units it had to build."""
    with BuildJob.open(config, corpus) as job:
        units = [(u.lang, u.index) for u in job.units]
        for unit in job.units:
            job.record(job.build_unit(unit))
        job.finish()
    return units


def assert_resumed(world: World, corpus: Path, finished: dict, rebuilt: list[tuple[str, int]],
                   identities: dict) -> None:
    """The shards finished before the kill were kept as they were; the rest was built once; same bytes."""
    assert not set(rebuilt) & set(finished), "a shard finished before the kill was built again"
    assert sorted(rebuilt) == sorted(set(rebuilt)) and len(rebuilt) == UNITS - len(finished)
    assert {key: file_identity(corpus / e["path"]) for key, e in finished.items()} == identities
    assert_like_reference(world, corpus)


def start(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """A subprocess in its own process group (so a kill takes its Dask workers too)."""
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=REPO, env={**ENV, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def cli(config: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "polyqa.cli", "build-corpus", "--config", str(config), "--output", str(output),
            "--no-progress", *extra]


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            return
        if process.poll() is not None:
            pytest.fail(f"the build ended (exit {process.returncode}) before the kill:\n{log.read_text()[-3000:]}")
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail(f"not ready to kill after {timeout} s:\n{log.read_text()[-3000:]}")


def killed_state(corpus: Path) -> tuple[dict, dict]:
    """After a kill: the finished shards, their files' identities; and the lock is free (no stale lock)."""
    OutputLock(corpus, "probe").acquire().release()
    finished = recorded(corpus)
    return finished, {key: file_identity(corpus / e["path"]) for key, e in finished.items()}


def open_fifo_writer(fifo: Path, process: subprocess.Popen, log: Path, timeout: float = 120) -> int:
    """Open the write end of a named pipe once the build opened its read end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            if process.poll() is not None:
                pytest.fail(f"the build ended before reading its source:\n{log.read_text()[-3000:]}")
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd
    pytest.fail("the build never opened its source")


# -- one writer per corpus ----------------------------------------------------------------------

def test_two_builds_at_once_one_refuses_naming_the_holder(world, tmp_path):
    config = world.config_file(tmp_path)
    output = tmp_path / "corpus"
    first, second = (start(cli(config, output), tmp_path / f"{name}.log") for name in ("a", "b"))
    codes = [first.wait(timeout=600), second.wait(timeout=600)]
    assert sorted(codes) == [0, 2], [(tmp_path / f"{n}.log").read_text()[-2000:] for n in "ab"]
    winner, loser_log = (first, tmp_path / "b.log") if codes[0] == 0 else (second, tmp_path / "a.log")
    refused = loser_log.read_text().strip().splitlines()[-1]
    assert refused.startswith(f"error: {output} is being written by polyqa build-corpus (reliability) on host "
                              f"{socket.gethostname()} pid {winner.pid} since ")
    assert refused.endswith(f": {output}: wait for it to finish (--wait SECONDS, or the flow's wait, waits for it), "
                            "or choose another output")
    assert cli_main(["validate", str(output)]) == 0
    assert_like_reference(world, output)


def test_command_waits_for_the_holder_with_wait(world, tmp_path):
    config, output = world.config_file(tmp_path, cache=world.root / "reference.sqlite"), tmp_path / "corpus"
    holder = OutputLock(output, "another build").acquire()
    try:
        process = start(cli(config, output, "--wait", "120"), tmp_path / "build.log")
        deadline = time.monotonic() + 120
        while "waiting up to 120 s" not in (tmp_path / "build.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "build.log").read_text()
            time.sleep(0.05)
        assert "is being written by another build on host" in (tmp_path / "build.log").read_text()
    finally:
        holder.release()
    assert process.wait(timeout=300) == 0, (tmp_path / "build.log").read_text()[-3000:]
    assert_like_reference(world, output)


def test_flow_refuses_while_the_command_builds_then_waits_for_it(world, tmp_path, flow_module, prefect_harness):
    """The command holds the output (blocked reading a named-pipe source); the flow refuses, then waits."""
    fifo = tmp_path / "records.jsonl"
    os.mkfifo(fifo)
    config, output, log = world.config_file(tmp_path, source=fifo), tmp_path / "corpus", tmp_path / "build.log"
    process = start(cli(config, output), log)
    fd = open_fifo_writer(fifo, process, log)
    try:
        with pytest.raises(OutputLockedError, match=f"is being written by polyqa build-corpus .* pid {process.pid} "):
            flow_module.build_corpus(output=str(output), config=str(config))

        def feed() -> None:
            time.sleep(1.0)
            os.write(fd, world.source.read_bytes())
            os.close(fd)

        feeder = threading.Thread(target=feed)
        feeder.start()
        summary = flow_module.build_corpus(output=str(output), config=str(config), wait=300)
        feeder.join()
        code = process.wait(timeout=120)  # the flow got the output once the command released it
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert code == 0, log.read_text()[-3000:]
    assert summary["rows"] == 300
    assert_like_reference(world, output)


def test_a_failed_build_releases_the_output(world, tmp_path, monkeypatch):
    config, output = world.config(world.root / "reference.sqlite"), tmp_path / "corpus"
    built = BuildJob.build_unit

    def fail_in_shard_1(job, unit):
        if (unit.index, unit.lang) == (1, "deu_Latn"):
            raise RuntimeError("injected failure")
        return built(job, unit)

    monkeypatch.setattr(BuildJob, "build_unit", fail_in_shard_1)
    with pytest.raises(RuntimeError, match="injected failure"):
        build_corpus(config, output)
    OutputLock(output, "probe").acquire().release()  # released on the way out
    monkeypatch.undo()
    assert resume(config, output) == [("deu_Latn", 1), ("fra_Latn", 1), *(
        (lang, k) for k in range(2, 20) for lang in ("eng_Latn", "deu_Latn", "fra_Latn"))]
    assert_like_reference(world, output)


# -- crash anywhere, resume to the same bytes ---------------------------------------------------

@pytest.mark.parametrize("after", [1, 30])
def test_command_killed_after_shards_land_resumes_to_the_same_bytes(world, tmp_path, after):
    config_path, output, log = world.config_file(tmp_path), tmp_path / "corpus", tmp_path / "build.log"
    process = start(cli(config_path, output), log)
    kill_when(process, lambda: len(recorded(output)) >= after, log)
    finished, identities = killed_state(output)
    assert after <= len(finished) < UNITS
    assert not validate_corpus(output).ok  # an unfinished corpus never passes
    rebuilt = resume(world.config(tmp_path / "cache.sqlite"), output)
    assert_resumed(world, output, finished, rebuilt, identities)


def test_command_killed_during_ingest_resumes_to_the_same_bytes(world, tmp_path):
    """Killed while staging records, before any manifest exists: the rerun is not refused, starts clean."""
    fifo = tmp_path / "records.jsonl"
    os.mkfifo(fifo)
    config_path, output, log = world.config_file(tmp_path, source=fifo), tmp_path / "corpus", tmp_path / "build.log"
    process = start(cli(config_path, output), log)
    fd = open_fifo_writer(fifo, process, log)
    os.write(fd, b"".join(world.source.read_bytes().splitlines(keepends=True)[:40]))
    kill_when(process, lambda: "ingest: 35 records staged" in log.read_text(), log)
    os.close(fd)
    finished, _ = killed_state(output)
    assert not finished and not (output / "manifest.json").exists() and (output / MARKER_FILE).exists()
    assert [p.name.split(".tmp-")[0] for p in temporary_files(output)] == [".quarantine.arrow", ".records.arrow"]
    fifo.unlink()
    shutil.copy(world.source, fifo)  # the same source, now a plain file
    rebuilt = resume(world.config(tmp_path / "cache.sqlite", source=fifo), output)
    assert_resumed(world, output, {}, rebuilt, {})


@pytest.mark.parametrize("dask_workers", [0, 2], ids=["threads", "dask"])
def test_flow_killed_resumes_to_the_same_bytes(world, tmp_path, flow_module, prefect_harness, monkeypatch,
                                               dask_workers):
    """`python flows/build_corpus.py` (on a local Dask cluster of 2 workers too) killed, then the flow resumes."""
    import prefect.settings

    config_path, output, log = world.config_file(tmp_path), tmp_path / "corpus", tmp_path / "flow.log"
    args = [sys.executable, "flows/build_corpus.py", "--config", str(config_path), "--output", str(output),
            "--dask-workers", str(dask_workers)]
    process = start(args, log, PREFECT_API_URL=prefect.settings.PREFECT_API_URL.value())
    kill_when(process, lambda: len(recorded(output)) >= 3, log)
    time.sleep(0.5)  # anything still alive of that build would show up as a changed file below
    finished, identities = killed_state(output)
    assert 3 <= len(finished) < UNITS
    rebuilt: list[tuple[str, int]] = []
    record = BuildJob.record
    monkeypatch.setattr(BuildJob, "record", lambda job, r: (rebuilt.append((r.lang, r.index)), record(job, r)))
    summary = flow_module.build_corpus(output=str(output), config=str(config_path))
    assert summary["rows"] == 300
    assert_resumed(world, output, finished, rebuilt, identities)


def test_flow_task_that_fails_once_is_retried_and_one_that_keeps_failing_is_rebuilt_next_run(
        world, tmp_path, flow_module, prefect_harness, monkeypatch):
    config, output = world.config(world.root / "reference.sqlite"), tmp_path / "corpus"
    attempts: list[tuple[int, str]] = []
    failing = {(1, "deu_Latn"): 1, (2, "fra_Latn"): 99}  # unit -> how many times it fails
    real = flow_module.build_unit

    def flaky(config_, output_, unit):
        key = (unit.index, unit.lang)
        attempts.append(key)
        if attempts.count(key) <= failing.get(key, 0):
            raise RuntimeError(f"injected failure of {key}")
        return real(config_, output_, unit)

    monkeypatch.setattr(flow_module, "build_unit", flaky)
    monkeypatch.setattr(flow_module, "build_shard", flow_module.build_shard.with_options(retry_delay_seconds=0))
    built: list[tuple[str, int]] = []
    record = BuildJob.record
    monkeypatch.setattr(BuildJob, "record", lambda job, r: (built.append((r.lang, r.index)), record(job, r)))
    with pytest.raises(RuntimeError, match=r"1 of 60 shards failed"):
        flow_module.build_corpus(output=str(output), config=config)
    assert attempts.count((1, "deu_Latn")) == 2 and ("deu_Latn", 1) in built  # retried once, then built
    assert attempts.count((2, "fra_Latn")) == 3 and ("fra_Latn", 2) not in built  # 1 + 2 retries
    assert len(built) == UNITS - 1 and len(set(built)) == len(built)
    OutputLock(output, "probe").acquire().release()  # the failed flow released the output
    failing.clear()
    built.clear()
    flow_module.build_corpus(output=str(output), config=config)
    assert built == [("fra_Latn", 2)]
    assert_like_reference(world, output)


# -- corruption is detected and repaired, never trusted ----------------------------------------

def _rewrite_rows(path: Path, keep: int) -> None:
    """A readable shard that disagrees with the manifest: its first rows only."""
    with pa.memory_map(str(path)) as source:
        table = ipc.open_file(source).read_all().slice(0, keep)
    with ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)


def test_validate_names_each_damage_and_a_rebuild_repairs_it(world, tmp_path, capsys):
    corpus = world.copy(tmp_path)
    manifest = Manifest.load(corpus)
    flipped, truncated, fewer, listed_wrong, missing = (
        manifest.shard(lang, k)["path"] for lang, k in
        (("deu_Latn", 0), ("fra_Latn", 1), ("eng_Latn", 4), ("eng_Latn", 2), ("deu_Latn", 3)))
    data = bytearray((corpus / flipped).read_bytes())
    data[len(data) // 2:len(data) // 2 + 32] = bytes(b ^ 0xFF for b in data[len(data) // 2:len(data) // 2 + 32])
    (corpus / flipped).write_bytes(bytes(data))
    size = (corpus / truncated).stat().st_size
    (corpus / truncated).write_bytes((corpus / truncated).read_bytes()[: size * 2 // 3])
    _rewrite_rows(corpus / fewer, 3)
    manifest.shard("eng_Latn", 2)["sha256"] = "0" * 64
    manifest.save(corpus)
    (corpus / missing).unlink()
    extra = corpus / "lang=fra_Latn/part-00020-of-00021.arrow"
    shutil.copy(corpus / manifest.shard("fra_Latn", 0)["path"], extra)
    quarantine = corpus / "quarantine.arrow"
    quarantine.write_bytes(quarantine.read_bytes()[:-40])

    errors = "\n".join(validate_corpus(corpus).errors)
    assert f"{flipped}: sha256 does not match the manifest (file changed or damaged: " in errors
    assert (f"{truncated}: sha256 does not match the manifest (file changed or damaged: {size * 2 // 3} bytes, "
            f"manifest says {size}; unreadable (") in errors and "of 5 rows readable" in errors
    assert f"{fewer}: sha256 does not match the manifest (file changed or damaged: " in errors
    assert "readable, 3 rows, manifest says 5); the same build command rebuilds it" in errors
    assert f"{listed_wrong}: sha256 does not match the manifest (file changed or damaged: readable, 5 rows, " \
           "manifest says 5)" in errors
    assert f"{missing}: file missing" in errors
    assert "lang=fra_Latn/part-00020-of-00021.arrow: shard file not in the manifest" in errors
    assert "quarantine.arrow: sha256 does not match the manifest" in errors
    capsys.readouterr()
    assert cli_main(["validate", str(corpus)]) == 1
    assert f"ERROR {missing}: file missing" in capsys.readouterr().out

    rebuilt = resume(world.config(world.root / "reference.sqlite"), corpus)
    assert sorted(rebuilt) == [("deu_Latn", 0), ("deu_Latn", 3), ("eng_Latn", 2), ("eng_Latn", 4), ("fra_Latn", 1)]
    assert not extra.exists()
    assert_like_reference(world, corpus)
    assert quarantine.read_bytes() == (world.reference / "quarantine.arrow").read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "not an object", "bad shard entry"])
def test_an_unreadable_manifest_is_set_aside_and_the_corpus_built_again(world, tmp_path, damage):
    corpus = world.copy(tmp_path)
    text = (corpus / "manifest.json").read_text("utf-8")
    if damage == "truncated":
        damaged, expected = text[: len(text) // 2], "not valid JSON"
    elif damage == "not an object":
        damaged, expected = "[]", "not a JSON object"
    else:
        data = json.loads(text)
        data["shards"][3]["sha256"] = None
        damaged, expected = json.dumps(data), "shards[3] has no valid 'sha256'"
    (corpus / "manifest.json").write_text(damaged, encoding="utf-8")
    report = validate_corpus(corpus)
    assert not report.ok and any("manifest.json" in e and expected in e for e in report.errors), report.errors
    with pytest.warns(ManifestDamagedWarning, match=r"manifest\.json is damaged .* moved to manifest\.json\.damaged-"):
        rebuilt = resume(world.config(world.root / "reference.sqlite"), corpus)
    assert len(rebuilt) == UNITS  # nothing of an unreadable manifest is trusted
    set_aside = list(corpus.glob("manifest.json.damaged-*"))
    assert len(set_aside) == 1 and set_aside[0].read_text("utf-8") == damaged  # kept, never deleted
    assert_like_reference(world, corpus)


def test_damaged_staged_records_are_read_again_not_trusted(world, tmp_path):
    config, output = world.config(world.root / "reference.sqlite"), tmp_path / "corpus"
    with BuildJob.open(config, output) as job:  # closed after 4 units, as a stopped build would be
        for unit in job.units[:4]:
            job.record(job.build_unit(unit))
    staged = output / "_work" / "records.arrow"
    data = bytearray(staged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    staged.write_bytes(bytes(data))
    messages: list[str] = []
    with BuildJob.open(config, output, log=messages.append) as job:
        assert len(job.units) == UNITS - 4  # the sources gave the same records: finished shards are kept
        for unit in job.units:
            job.record(job.build_unit(unit))
        job.finish()
    assert "ingest: the staged records or quarantine.arrow fail their checksum; reading the sources again" in messages
    assert_like_reference(world, output)


def test_a_complete_corpus_with_leftovers_is_tidied_without_rebuilding(world, tmp_path):
    corpus = world.copy(tmp_path)
    (corpus / "README.md").unlink()  # killed between the manifest and the card
    (corpus / "_work").mkdir()
    (corpus / "lang=deu_Latn" / ".part-00000-of-00020.arrow.tmp-123-0123abcd").write_bytes(b"half")
    report = validate_corpus(corpus)
    assert report.ok and len(report.notes) == 2, report.text()
    shards = {p: file_identity(p) for p in corpus.glob("lang=*/*.arrow")}
    assert resume(world.config(world.root / "reference.sqlite"), corpus) == []
    assert {p: file_identity(p) for p in corpus.glob("lang=*/*.arrow")} == shards
    assert is_polyqa_card(corpus)
    assert_like_reference(world, corpus)


# -- nothing of the user's is deleted -----------------------------------------------------------

def test_a_folder_polyqa_did_not_create_is_refused_unless_allowed(world, tmp_path, capsys):
    folder = tmp_path / "mine"
    (folder / "data").mkdir(parents=True)
    (folder / "notes.txt").write_text("keep me")
    (folder / "data" / "table.csv").write_text("1,2\n")
    argv = ["build-corpus", "--config", str(world.config_file(tmp_path, cache=world.root / "reference.sqlite")),
            "--output", str(folder), "--no-progress"]
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"error: the output folder is not empty and polyqa did not create it: it holds data/, notes.txt: "
                   f"{folder}: choose a new or empty folder, or pass --allow-non-empty to build beside these files\n")
    assert cli_main([*argv, "--overwrite"]) == 2
    assert "polyqa did not create this folder: it holds data/, notes.txt; not deleting anything" in \
        capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["data", "notes.txt"]  # left exactly as it was

    assert cli_main([*argv, "--allow-non-empty"]) == 0
    assert_like_reference(world, folder)
    assert cli_main([*argv, "--overwrite"]) == 0  # polyqa's now: only its own files are replaced
    assert (folder / "notes.txt").read_text() == "keep me" and (folder / "data" / "table.csv").read_text() == "1,2\n"
    assert_like_reference(world, folder)

    other = tmp_path / "with-readme"
    other.mkdir()
    (other / "README.md").write_text("my project")
    argv[argv.index(str(folder))] = str(other)
    capsys.readouterr()
    assert cli_main([*argv, "--allow-non-empty"]) == 2  # the card would overwrite it
    assert "holds files under names a corpus uses (README.md)" in capsys.readouterr().err
    assert (other / "README.md").read_text() == "my project"


def test_overwrite_deletes_only_what_polyqa_wrote(world, tmp_path, capsys):
    corpus = world.copy(tmp_path)
    (corpus / "notes.txt").write_text("mine")
    (corpus / "lang=deu_Latn" / "my-notes.txt").write_text("mine too")
    (corpus / "manifest.json.damaged-20260101T000000Z-1").write_text("set aside earlier")
    card = corpus / "README.md"
    card.write_text(card.read_text("utf-8") + "\nMy own remarks.\n", encoding="utf-8")  # edited: the user's now
    shutil.copy(corpus / "lang=fra_Latn/part-00000-of-00020.arrow", corpus / "lang=fra_Latn/part-00007-of-00008.arrow")
    argv = ["build-corpus", "--config", str(world.config_file(tmp_path, cache=world.root / "reference.sqlite")),
            "--output", str(corpus), "--no-progress", "--overwrite"]
    assert cli_main(argv) == 0
    err = capsys.readouterr().err
    assert "removed the previous corpus (63 files); kept 4 that polyqa did not write (README.md, lang=deu_Latn/, " \
           "manifest.json.damaged-20260101T000000Z-1, notes.txt)" in err
    assert (corpus / "notes.txt").read_text() == "mine"
    assert (corpus / "lang=deu_Latn" / "my-notes.txt").read_text() == "mine too"
    assert (corpus / "manifest.json.damaged-20260101T000000Z-1").read_text() == "set aside earlier"
    kept = list(corpus.glob("README.md.kept-*"))
    assert len(kept) == 1 and kept[0].read_text("utf-8").endswith("My own remarks.\n")
    assert is_polyqa_card(corpus) and "My own remarks" not in card.read_text("utf-8")
    assert_like_reference(world, corpus)


def test_output_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "corpus"
    target.write_text("not a folder")
    assert cli_main(["build-corpus", "--output", str(target), "--no-progress"]) == 2
    assert capsys.readouterr().err == (f"error: the output is a file, not a folder: {target}: pass a new folder, "
                                       "or a corpus folder, as --output\n")
    assert target.read_text() == "not a folder"


# -- settings out of range are refused before anything is written --------------------------------

@pytest.mark.parametrize("command", ["build-corpus", "import-parallel"])
@pytest.mark.parametrize("rows", ["0", "-5"])
def test_shard_rows_below_one_is_refused(tmp_path, capsys, xquad_r_dir, command, rows):
    argv = ["build-corpus"] if command == "build-corpus" else ["import-parallel", str(xquad_r_dir)]
    assert cli_main([*argv, "--output", str(tmp_path / "c"), "--shard-rows", rows]) == 2
    assert f"shard_rows must be >= 1, got {rows}" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("override, message", [
    ({"shard_rows": 2.5}, "shard_rows must be a whole number, got 2.5"),
    ({"shard_rows": "100"}, "shard_rows must be a whole number, got '100'"),
    ({"decoding": {"beam_size": 0}}, "decoding.beam_size must be an integer of at least 1, got 0"),
    ({"decoding": {"max_length_ratio": -1}}, "decoding.max_length_ratio must be a number of at least 0"),
    ({"decoding": {"beams": 2}}, "decoding: unknown setting(s) ['beams']"),
    ({"engine": {"inter_threads": 0}}, "engine.inter_threads must be an integer of at least 1, got 0"),
    ({"engine": {"device": "tpu"}}, "engine.device must be cpu or cuda, got 'tpu'"),
    ({"quality": {"max_repetition": 1.5}}, "quality.max_repetition must be a number from 0 to 1, got 1.5"),
    ({"quality": {"fuzzy_threshold": 101}}, "quality.fuzzy_threshold must be a number from 0 to 100"),
    ({"quality": {"min_langid_score": True}}, "quality.min_langid_score must be a number from 0 to 1"),
    ({"quality": {"min_length_ratio": 4}}, "quality.min_length_ratio (4) is above quality.max_length_ratio"),
    ({"compression": "gzip"}, "compression must be one of zstd, lz4, none for arrow, got 'gzip'"),
    ({"quantization": "int4"}, "quantization must be one of int8"),
])
def test_config_numbers_are_checked_when_the_config_is_read(override, message):
    with pytest.raises(ConfigError) as raised:
        load_config(None, override)
    assert message in str(raised.value)


@pytest.mark.parametrize("override, message", [
    ({"shard_rows": 0}, "shard_rows must be >= 1, got 0"),
    ({"format": "csv"}, "format must be one of arrow, parquet, got 'csv'"),
    ({"compression": "gzip"}, "compression must be one of zstd, lz4, none for arrow"),
    ({"shard_size": 5}, "unknown setting(s) ['shard_size']"),
])
def test_a_config_constructed_directly_is_checked_too(override, message):
    """Keywords, dataclasses.replace and from_dict go through the same checks."""
    import dataclasses

    from polyqa.corpus.config import BuildConfig

    with pytest.raises(ConfigError) as raised:
        BuildConfig(**override)
    assert message in str(raised.value)
    if "shard_size" not in override:
        with pytest.raises(ConfigError, match=re.escape(message)):
            dataclasses.replace(BuildConfig(), **override)


def test_conflict_errors_are_one_line_errors(world, tmp_path, capsys):
    """A corpus of another configuration: refused with what to do (the CLI's one-line error, exit 2)."""
    corpus = world.copy(tmp_path)
    with pytest.raises(CorpusConflictError, match="different configuration"):
        BuildJob.open(dict(world.config(world.root / "reference.sqlite"), languages=["de"]), corpus)
    OutputLock(corpus, "probe").acquire().release()


def test_a_card_rewritten_by_validate_stays_polyqa_s(world, tmp_path, capsys):
    corpus = world.copy(tmp_path)
    (corpus / "README.md").write_text("stale card", encoding="utf-8")
    assert cli_main(["validate", str(corpus), "--write-card"]) == 0
    assert is_polyqa_card(corpus)
    config = world.config_file(tmp_path, cache=world.root / "reference.sqlite")
    assert cli_main(["build-corpus", "--config", str(config), "--output", str(corpus), "--no-progress",
                     "--overwrite"]) == 0
    assert not list(corpus.glob("README.md.kept-*"))  # replaced as polyqa's own, not kept aside as the user's
    assert_like_reference(world, corpus)


def test_a_disk_that_fills_up_mid_build_is_one_line_naming_the_file_and_the_rerun_resumes(world, tmp_path, capsys,
                                                                                          monkeypatch):
    """The 10th shard is written to /dev/full (the kernel's real ENOSPC): one error line naming that shard;
    the 9 shards before it stay recorded, and a rerun builds only the rest, to the reference bytes."""
    from polyqa.corpus import writer

    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full (Linux) for a real ENOSPC")
    real_osfile, calls = writer.pa.OSFile, []

    def filling_up(path, mode="rb"):  # pyarrow's OSFile, which writes every shard (and other files)
        if "w" in mode and "lang=" in str(path):
            calls.append(path)
            if len(calls) == 10:
                return real_osfile("/dev/full", mode)
        return real_osfile(path, mode)

    monkeypatch.setattr(writer.pa, "OSFile", filling_up)
    config, output = world.config_file(tmp_path), tmp_path / "corpus"
    assert cli_main(["build-corpus", "--config", str(config), "--output", str(output), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the disk is full: ") and "lang=" in err[-1] and str(output) in err[-1], err[-1]
    assert "finished work is kept" in err[-1]
    assert len(Manifest.load(output).shards) == 9
    monkeypatch.setattr(writer.pa, "OSFile", real_osfile)
    assert cli_main(["build-corpus", "--config", str(config), "--output", str(output), "--no-progress"]) == 0
    assert f"9 of {UNITS} shards already done; building {UNITS - 9}" in capsys.readouterr().err
    assert_like_reference(world, output)
