"""Object storage: corpora built, killed, resumed, validated and read back on a real S3 server.

The server is moto in server mode: S3 over HTTP on 127.0.0.1, a free port, started by the
``s3`` fixture. polyqa, pyarrow, datasets and Dask workers reach it the way users of s3fs and
pyarrow do: the URL ``s3://bucket/...`` plus the environment (``AWS_ENDPOINT_URL``, keys).
Builds use the tiny NLLB model of the other build tests.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from polyqa.cli import main as cli_main
from polyqa.corpus.job import BuildJob, build_corpus
from polyqa.corpus.manifest import Manifest
from polyqa.corpus.reader import SHARD_RE, read_language
from polyqa.corpus.validate import validate_corpus
from polyqa.errors import PolyqaError
from polyqa.locking import LEASE_RE, LeaseLock, OutputLockedError
from polyqa.storage import RemotePath, as_path, spool_dir

REPO = Path(__file__).resolve().parents[1]
BUCKET = "polyqa-test"
ARTICLES = 8  # 40 QA pairs of the embedded sample, and one unusable row for the quarantine
SHARD_ROWS = 4  # 10 shards x 3 languages
UNITS = 30
LANGS = ("eng_Latn", "deu_Latn", "fra_Latn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 and a bucket; the environment points s3fs, pyarrow and boto at it."""
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield SimpleNamespace(endpoint=endpoint, env=env, fs=s3fs.S3FileSystem(use_listings_cache=False))
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        s3fs.S3FileSystem.clear_instance_cache()


def url(name: str) -> str:
    return f"s3://{BUCKET}/{name}"


def write_records(path: Path) -> Path:
    sample = json.loads(resources.files("polyqa.data").joinpath("default_sample.json").read_text("utf-8"))
    lines = [{"id": qa["id"], "title": article["title"], "question": qa["question"], "passage": paragraph["context"],
              "answers": qa["answers"]}
             for article in sample["data"][:ARTICLES] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    lines.insert(5, {"id": "bad-answer", "question": "Where?", "passage": "A passage.", "answers": ["nowhere"]})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@dataclass
class World:
    root: Path
    source: Path
    tiny_model_dir: Path
    reference: str  # an uninterrupted build on S3

    def config(self, cache: Path | None = None) -> dict:
        return {"name": "object-storage",
                "sources": [{"kind": "jsonl", "path": str(self.source), "name": "sample", "license": "CC0-1.0"}],
                "languages": ["de", "fr"], "shard_rows": SHARD_ROWS, "model": "tiny",
                "tiny_model_dir": str(self.tiny_model_dir), "cache": str(cache or self.root / "reference.sqlite"),
                "decoding": {"beam_size": 1, "max_length_ratio": 1.2, "max_length_extra": 4}, "card_dir": None}

    def config_file(self, folder: Path, cache: Path | None = None) -> Path:
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(self.config(cache)), encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory, tiny_model) -> World:
    root = tmp_path_factory.mktemp("object-storage")
    world = World(root, write_records(root / "records.jsonl"), tiny_model.hf_dir.parent, url("reference"))
    manifest = build_corpus(world.config(), world.reference)
    assert manifest.n_shards * len(LANGS) == UNITS and manifest.quarantine_rows() == 1
    return world


# -- helpers ------------------------------------------------------------------------------------

def objects(s3, prefix: str) -> dict[str, bytes]:
    """Every object under a prefix, by its name relative to the prefix."""
    root = f"{BUCKET}/{prefix}"
    return {name[len(root) + 1:]: s3.fs.cat_file(name) for name in s3.fs.find(root)}


def shard_bytes(s3, prefix: str) -> dict[str, bytes]:
    return {name: data for name, data in objects(s3, prefix).items()
            if name.startswith("lang=") and SHARD_RE.match(name.rsplit("/", 1)[1])}


def leases(s3, prefix: str) -> dict[int, dict]:
    return {int(LEASE_RE.match(name).group(1)): json.loads(data) for name, data in objects(s3, prefix).items()
            if LEASE_RE.match(name)}


def recorded(prefix: str) -> dict[tuple[str, int], dict]:
    try:
        manifest = Manifest.load(url(prefix))
    except (ValueError, OSError):
        return {}
    return {(e["lang"], e["index"]): e for e in manifest.shards} if manifest else {}


def assert_like_reference(s3, world: World, prefix: str) -> None:
    report = validate_corpus(url(prefix))
    assert report.ok and not report.notes, report.text()
    assert shard_bytes(s3, prefix) == shard_bytes(s3, "reference") and len(shard_bytes(s3, prefix)) == UNITS
    reference = objects(s3, "reference")
    assert objects(s3, prefix)["quarantine.arrow"] == reference["quarantine.arrow"]
    names = set(objects(s3, prefix))
    assert not any(name.startswith("_work/") for name in names), names
    assert all(lease["released"] for lease in leases(s3, prefix).values())


def cli(config: Path, output: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "polyqa.cli", "build-corpus", "--config", str(config), "--output", output,
            "--no-progress", *extra]


def start(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **env}
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def built_units(log: Path) -> list[tuple[str, int]]:
    """The units a `--no-progress` build wrote, from its log lines."""
    return [(lang, int(k)) for k, lang in re.findall(r"^shard (\d+) (\w+): \d+ rows$", log.read_text(), re.M)]


# -- build, kill, resume, validate, read back -----------------------------------------------------

def test_a_build_killed_on_s3_resumes_to_the_same_bytes_and_validates(s3, world, tmp_path, capsys):
    config, output = world.config_file(tmp_path, tmp_path / "cache.sqlite"), url("killed")
    log = tmp_path / "build.log"
    process = start(cli(config, output), log)
    deadline = time.monotonic() + 300
    while not recorded("killed"):  # the first shard landed (the manifest lists it)
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    finished = recorded("killed")
    assert 1 <= len(finished) < UNITS
    assert leases(s3, "killed")[0]["released"] is False  # killed holding its lease
    assert cli_main(["validate", output]) == 1  # an unfinished corpus never passes
    # What a kill in the middle of a write leaves: a local file on its way to the store.
    leftover = spool_dir() / f"{process.pid}-part-00004-of-00010.arrow.k1ll3d.tmp"
    leftover.write_bytes(b"half a shard")

    # The same command again: the dead holder ran on this machine, so its lease is taken at once.
    log = tmp_path / "resume.log"
    resumed = start(cli(config, output), log)
    assert resumed.wait(timeout=300) == 0, log.read_text()[-3000:]
    rebuilt = built_units(log)
    assert f"{len(finished)} of {UNITS} shards already done; building {UNITS - len(finished)}" in log.read_text()
    assert not set(rebuilt) & set(finished) and len(rebuilt) == len(set(rebuilt)) == UNITS - len(finished)
    assert {key: e["sha256"] for key, e in recorded("killed").items() if key in finished} == \
        {key: e["sha256"] for key, e in finished.items()}
    assert list(leases(s3, "killed")) == [1]  # generation 0 (the dead build's) was taken over and tidied
    assert not leftover.exists()  # the dead build's local files are removed by the next build

    capsys.readouterr()
    assert cli_main(["validate", output]) == 0
    assert capsys.readouterr().out.startswith(f"{output}: OK\n  shards checked: 30\n")
    assert_like_reference(s3, world, "killed")


def test_an_s3_corpus_reads_back_with_pyarrow_and_datasets_through_its_url(s3, world, monkeypatch):
    import datasets
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    expected = {lang: read_language(world.reference, lang).to_pylist() for lang in LANGS}
    assert len(expected["deu_Latn"]) == 40

    # pyarrow's own S3 filesystem, from the same URL (endpoint and keys from the environment)
    filesystem, root = pafs.FileSystem.from_uri(f"{world.reference}/lang=deu_Latn")
    assert isinstance(filesystem, pafs.S3FileSystem)
    files = sorted(info.path for info in filesystem.get_file_info(pafs.FileSelector(root)))
    assert ds.dataset(files, filesystem=filesystem, format="arrow").to_table().to_pylist() == expected["deu_Latn"]

    # datasets, with the endpoint given as storage options (its offline switch blocks every remote URL)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3.endpoint}}
    corpus = datasets.load_dataset("arrow", data_files={"train": f"{world.reference}/lang=*/*.arrow"}, split="train",
                                   storage_options=options, cache_dir=str(world.root / "hf-cache"))
    assert corpus.num_rows == 3 * 40
    assert sorted(corpus.filter(lambda row: row["lang"] == "fra_Latn")["qa_id"]) == \
        sorted(row["qa_id"] for row in expected["fra_Latn"])

    # the card's own loading snippet, which names the URL
    card = as_path(world.reference) / "README.md"
    snippet = re.search(r"```python\n(.*?)```", card.read_text(), re.S).group(1)
    assert f'"{world.reference}/lang=*/*.arrow"' in snippet
    scope: dict = {}
    exec(snippet.replace("print(next(iter(german)))", "row = next(iter(german))"), scope)  # noqa: S102
    assert scope["row"]["lang"] == "deu_Latn" and scope["table"].num_rows == 3 * 40


def test_validate_names_a_damaged_object_and_a_rebuild_repairs_only_it(s3, world, tmp_path, capsys):
    s3.fs.copy(f"{BUCKET}/reference", f"{BUCKET}/damaged", recursive=True)
    shard = "lang=deu_Latn/part-00003-of-00010.arrow"
    data = s3.fs.cat_file(f"{BUCKET}/damaged/{shard}")
    s3.fs.pipe_file(f"{BUCKET}/damaged/{shard}", data[:-100])
    capsys.readouterr()
    assert cli_main(["validate", url("damaged")]) == 1
    out = capsys.readouterr().out
    errors = [line.strip() for line in out.splitlines() if "ERROR" in line]
    assert errors[0].startswith(f"ERROR {shard}: sha256 does not match the manifest (file changed or damaged: "
                                f"{len(data) - 100} bytes, manifest says {len(data)}; "), out
    assert errors[1:] == ["ERROR language deu_Latn: 36 rows, manifest says 40 records"], out

    log_lines: list[str] = []
    build_corpus(world.config(), url("damaged"), log=log_lines.append)
    assert "29 of 30 shards already done; building 1" in "\n".join(log_lines)
    assert [line for line in log_lines if line.startswith("shard ")] == ["shard 3 deu_Latn: 4 rows"]
    assert_like_reference(s3, world, "damaged")


# -- one writer per output ------------------------------------------------------------------------

def test_a_second_writer_is_refused_naming_the_lease_holder_or_waits_for_it(s3, world, tmp_path, capsys):
    output = url("contended")
    config = world.config_file(tmp_path)
    holder = LeaseLock(as_path(output), "another build").acquire()
    try:
        capsys.readouterr()
        assert cli_main(["build-corpus", "--config", str(config), "--output", output, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {output} is being written by another build on host {socket.gethostname()} "
                              f"pid {os.getpid()} since "), err
        assert re.search(r" \(its lease runs out 1[12]\d s from now unless renewed\): ", err), err
        assert err.endswith(f": {output}: wait for it to finish (--wait SECONDS, or the flow's wait, waits for it), "
                            "or choose another output")
        assert set(objects(s3, "contended")) == {".polyqa.lease-00000000.json"}  # nothing written

        log = tmp_path / "wait.log"
        process = start(cli(config, output, "--wait", "120"), log)
        deadline = time.monotonic() + 120
        while "waiting up to 120 s" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        holder.release()
    assert process.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert_like_reference(s3, world, "contended")


def test_many_writers_at_once_exactly_one_gets_the_lease(s3):
    for attempt in range(5):
        folder = as_path(url(f"race-{attempt}"))
        barrier = threading.Barrier(6)
        won: list[LeaseLock] = []
        refused: list[str] = []

        def take(i: int) -> None:
            lock = LeaseLock(folder, f"writer {i}")
            barrier.wait()
            try:
                won.append(lock.acquire())
            except OutputLockedError as exc:
                refused.append(str(exc))

        threads = [threading.Thread(target=take, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1 and len(refused) == 5, (won, refused)
        assert all(f"is being written by {won[0].what} on host" in message for message in refused)
        won[0].release()


def test_a_lease_that_runs_out_is_taken_over_and_its_holder_stops_before_the_manifest(s3, world, monkeypatch):
    # A holder on another machine that stopped renewing: refused while its lease runs, taken after.
    folder = as_path(url("expired"))
    stale = {"what": "polyqa build-corpus (x)", "host": "elsewhere", "boot_id": "b", "pid_namespace": "p", "pid": 7,
             "started": "2026-01-01T00:00:00+00:00", "renewed_unix": time.time(), "lease_seconds": 2.0,
             "released": False}
    (folder / ".polyqa.lease-00000000.json").write_bytes(json.dumps(stale).encode())
    with pytest.raises(OutputLockedError, match="being written by polyqa build-corpus \\(x\\) on host elsewhere pid 7"):
        LeaseLock(folder, "me").acquire()
    started = time.monotonic()
    lock = LeaseLock(folder, "me", wait=30).acquire()
    assert 0.5 < time.monotonic() - started < 10 and lock.generation == 1
    assert list(leases(s3, "expired")) == [1]
    lock.release()
    assert leases(s3, "expired")[1]["released"] is True

    # A build that stalls past its lease loses it, and stops before writing the manifest.
    monkeypatch.setenv("POLYQA_LEASE_SECONDS", "2")
    output = url("stalled")
    with BuildJob.open(world.config(), output) as job:
        job.record(job.build_unit(job.units[0]))
        job._lock._stop.set()  # the renewals stop, as in a process that hangs
        job._lock._thread.join()
        time.sleep(2.2)
        other = LeaseLock(as_path(output), "the next build").acquire()
        with pytest.raises(OutputLockedError, match=f"this build no longer holds {output}: another writer took the "
                                                    "lease over: the next build on host"):
            job.record(job.build_unit(job.units[1]))
        assert len(recorded("stalled")) == 1  # the second unit was not recorded
    assert other.held and other.generation == 1
    assert leases(s3, "stalled")[1]["released"] is False  # the loser left the winner's lease alone
    other.release()


def test_a_store_that_ignores_conditional_writes_is_refused(s3, monkeypatch):
    def create_ignoring_the_condition(self: RemotePath, data: bytes) -> bool:
        self.write_bytes(data)
        return True

    monkeypatch.setattr(RemotePath, "create", create_ignoring_the_condition)
    with pytest.raises(PolyqaError, match="ignores conditional writes \\(If-None-Match\\), so polyqa cannot keep "
                                          "one writer per output there"):
        LeaseLock(as_path(url("unconditional")), "me").acquire()
    assert leases(s3, "unconditional")[0]["released"] is True


def test_stores_without_an_atomic_create_and_missing_buckets_are_refused_before_any_access(capsys):
    for output in ("hf://datasets/someone/corpus", "memory://corpus"):
        capsys.readouterr()
        assert cli_main(["build-corpus", "--output", output, "--no-progress"]) == 2
        err = capsys.readouterr().err
        protocol = output.split(":")[0]
        assert err.startswith(f"error: polyqa builds only into local folders and stores with an atomic "
                              f"create-if-absent (gcs://, gs://, s3://, s3a://): {protocol}:// has none"), err
        assert err.count("\n") == 1
    capsys.readouterr()
    assert cli_main(["build-corpus", "--output", "s3://no-such-bucket/corpus", "--no-progress"]) == 2
    assert capsys.readouterr().err == ("error: bucket not found (polyqa never creates buckets): s3://no-such-bucket: "
                                       "create it, or check the name and the endpoint (AWS_ENDPOINT_URL)\n")


# -- nothing of the user's is deleted --------------------------------------------------------------

def test_objects_polyqa_did_not_write_are_never_deleted(s3, world, tmp_path, capsys):
    mine = {"notes.txt": b"keep me", "data/table.csv": b"1,2\n"}
    for name, data in mine.items():
        s3.fs.pipe_file(f"{BUCKET}/mine/{name}", data)
    output = url("mine")
    argv = ["build-corpus", "--config", str(world.config_file(tmp_path)), "--output", output, "--no-progress",
            "--shard-rows", "40"]  # one shard per language: quick
    capsys.readouterr()
    assert cli_main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: the output folder is not empty and polyqa did not create it: it holds data/, notes.txt: {output}: "
        "choose a new or empty folder, or pass --allow-non-empty to build beside these files\n")
    assert cli_main([*argv, "--overwrite"]) == 2
    assert "not deleting anything" in capsys.readouterr().err
    assert objects(s3, "mine") == mine  # refused before anything was written

    assert cli_main([*argv, "--allow-non-empty"]) == 0
    assert cli_main([*argv, "--overwrite"]) == 0  # polyqa's now: only its own objects are replaced
    assert "removed the previous corpus (6 files); kept 2 that polyqa did not write (data/, notes.txt)" in \
        capsys.readouterr().err
    assert {name: objects(s3, "mine")[name] for name in mine} == mine
    assert validate_corpus(output).ok
    assert sorted(name for name in objects(s3, "mine") if name.startswith("lang=")) == [
        f"lang={lang}/part-00000-of-00001.arrow" for lang in sorted(LANGS)]


# -- Dask workers in other processes write one corpus ---------------------------------------------

def test_dask_worker_processes_write_the_shards_of_one_s3_corpus(s3, world):
    from dask.distributed import Client, LocalCluster, as_completed

    from polyqa.corpus.job import build_unit

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client, BuildJob.open(world.config(), url("dask")) as job:
        assert isinstance(job.output, RemotePath)
        workers = set(client.run(os.getpid).values())
        assert len(workers) == 2 and os.getpid() not in workers
        futures = client.map(build_unit, [job.config] * len(job.units), [str(job.output)] * len(job.units),
                             job.units, pure=False)
        for future in as_completed(futures):
            job.record(future.result())  # only the small record travels back
        job.finish()
    assert_like_reference(s3, world, "dask")


# -- file:// URLs, training, evaluation ------------------------------------------------------------

def test_file_urls_are_local_folders(s3, world, tmp_path, capsys):
    folder = tmp_path / "corpus"
    build_corpus(world.config(), f"file://{folder}")
    assert (folder / ".polyqa.lock").exists()  # the local OS file lock, not a lease
    capsys.readouterr()
    assert cli_main(["validate", f"file://{folder}"]) == 0
    local = {str(p.relative_to(folder)): p.read_bytes() for p in folder.glob("lang=*/*")}
    assert local == shard_bytes(s3, "reference")  # the same bytes, wherever the corpus is
    assert read_language(f"file://{folder}", "de").equals(read_language(world.reference, "de"))


def test_training_reads_its_corpus_from_s3(s3, small_corpus, tmp_path):
    from polyqa.train.config import TrainConfig
    from polyqa.train.job import TrainJob
    from polyqa.train.record import corpus_manifest_sha256

    s3.fs.put(str(small_corpus), f"{BUCKET}/train-corpus", recursive=True)
    settings = {"output_dir": str(tmp_path / "run"), "base_model": "org/not-loaded", "batch_size": 8,
                "positive": "sentence", "heldout_fraction": 0.25}
    remote = TrainJob(TrainConfig(corpus=url("train-corpus"), **settings)).pairs
    local = TrainJob(TrainConfig(corpus=str(small_corpus), **settings)).pairs
    assert remote.languages == local.languages and remote.qa_ids.equals(local.qa_ids)
    assert all(a.equals(b) for a, b in zip(remote.questions + remote.positives, local.questions + local.positives))
    assert (remote.usable == local.usable).all() and remote.skipped == local.skipped
    assert corpus_manifest_sha256(url("train-corpus")) == corpus_manifest_sha256(small_corpus)
    assert remote.skipped_table().column("source")[0].as_py().startswith(url("train-corpus") + "/lang=")


def test_evaluation_reads_a_lareqa_folder_and_a_corpus_from_s3(s3, world):
    from polyqa.evaluate.benchmark import load_benchmark

    folder = REPO / "tests" / "fixtures" / "mlqa-r"
    s3.fs.put(str(folder), f"{BUCKET}/mlqa-r", recursive=True)
    remote, local = load_benchmark("lareqa", url("mlqa-r")), load_benchmark("lareqa", str(folder))
    assert remote.data_dir == url("mlqa-r") and remote.languages == local.languages == ["deu_Latn", "eng_Latn",
                                                                                        "spa_Latn"]
    assert remote.queries == local.queries and remote.candidates == local.candidates
    corpus = load_benchmark("polyqa-corpus", world.reference)
    assert corpus.data_dir == world.reference and len(corpus.languages) == 3 and corpus.queries


def test_a_remote_path_is_sent_to_other_processes_as_its_url(s3):
    import pickle

    path = as_path(url("x")) / "lang=deu_Latn"
    copy = pickle.loads(pickle.dumps(path))
    assert copy == path and str(copy) == f"s3://{BUCKET}/x/lang=deu_Latn" and copy.fs is not None
    with pytest.raises(TypeError):
        open(path)  # noqa: SIM115 (no __fspath__: a URL never becomes a local folder named s3:)


# -- a Dask cluster started from the command line, one worker killed mid-build ----------------------

def _dask(args: list[str], log: Path) -> subprocess.Popen:
    """``dask scheduler`` / ``dask worker`` as an operator starts them, on 127.0.0.1 only."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def test_the_flow_on_a_command_line_cluster_survives_a_killed_worker(s3, world, tmp_path, prefect_harness):
    """Scheduler and two workers started with ``dask``; one is SIGKILLed once units are landing on S3.
    The build finishes with the reference bytes, a valid manifest and a released lease."""
    from dask.distributed import Client

    sys.path.insert(0, str(REPO))
    try:
        from flows import build_corpus as flow_module
    finally:
        sys.path.remove(str(REPO))
    scheduler_file = tmp_path / "scheduler.json"
    started: list[subprocess.Popen] = []
    try:
        started.append(_dask(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                              "--scheduler-file", str(scheduler_file)], tmp_path / "scheduler.log"))
        _wait_for(scheduler_file.exists, 60, "the scheduler wrote no scheduler file")
        for name in ("w1", "w2"):
            # --no-nanny: a killed worker stays dead (a nanny would restart it).
            started.append(_dask(["worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
                                  "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name],
                                 tmp_path / f"{name}.log"))
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
            worker_pids = client.run(os.getpid)
        victim = next(iter(worker_pids.values()))
        victim_process = next(p for p in started if p.pid == victim)  # the worker process itself

        kill = {}

        def kill_when_units_land() -> None:
            _wait_for(lambda: len(recorded("cluster")) >= 3, 120, "no unit was recorded")
            kill["recorded"] = len(recorded("cluster"))
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill_when_units_land, daemon=True)
        killer.start()
        summary = flow_module.build_corpus(output=url("cluster"), config=world.config(tmp_path / "cache.sqlite"),
                                           dask_address=address)
        killer.join(timeout=10)
        assert 3 <= kill["recorded"] < UNITS, "the worker was killed mid-build"
        assert victim_process.wait(timeout=10) == -signal.SIGKILL
        assert summary["rows"] == 120
        assert_like_reference(s3, world, "cluster")
        local = tmp_path / "local"  # and the bytes of a plain local build
        build_corpus(world.config(tmp_path / "local-cache.sqlite"), local)
        assert shard_bytes(s3, "cluster") == {str(p.relative_to(local)): p.read_bytes()
                                              for p in local.glob("lang=*/*.arrow")}
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def test_a_refresh_on_fresh_workers_translates_only_the_new_segments(s3, world, tmp_path, prefect_harness):
    """Build on S3; add 5% new questions; refresh on two fresh Dask worker processes whose cache is empty."""
    from polyqa.corpus.plan import plan_build

    sys.path.insert(0, str(REPO))
    try:
        from flows import build_corpus as flow_module
    finally:
        sys.path.remove(str(REPO))
    source = tmp_path / "records.jsonl"
    lines = world.source.read_text("utf-8").splitlines()
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = dict(world.config(tmp_path / "first.sqlite"),
                  sources=[{"kind": "jsonl", "path": str(source), "name": "sample", "license": "CC0-1.0"}])
    build_corpus(config, url("refresh"))
    records = [json.loads(line) for line in lines if '"bad-answer"' not in line]
    new = [dict(records[i], id=f"new-{i}", question=f"Which new question number {i} is this?") for i in range(2)]
    source.write_text("\n".join(lines + [json.dumps(r) for r in new]) + "\n", encoding="utf-8")  # 2 of 40: 5%
    expected = {p.lang: p.new_segments for p in plan_build(config).languages}  # against the first build's cache
    assert all(0 < n <= 2 for n in expected.values()), expected
    summary = flow_module.build_corpus(output=url("refresh"), config=dict(config, cache=str(tmp_path / "fresh.sqlite")),
                                       refresh=True, dask_workers=2)
    assert summary["records"] == 42
    manifest = Manifest.load(url("refresh"))
    assert {lang: c["translated"] for lang, c in manifest.translation_per_language().items()} == expected
    assert validate_corpus(url("refresh")).ok


# -- a bucket that stops taking writes mid-build ---------------------------------------------------

@pytest.fixture
def guarded_store(tmp_path):
    """A second moto server that checks every request against IAM policies, as S3 does: a builder user
    allowed s3:*, and an admin who can change the builder's policy. Stopped by PID at the end."""
    import boto3

    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "6"}  # the six IAM calls below set the users up
    with open(tmp_path / "moto.log", "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 60, "moto did not start")
        endpoint = f"http://127.0.0.1:{port}"
        setup = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup",
                             aws_secret_access_key="setup")
        keys = {}
        for user, actions in (("builder", ["s3:*"]), ("admin", ["iam:*", "s3:*"])):
            setup.create_user(UserName=user)
            setup.put_user_policy(UserName=user, PolicyName="allow", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
            keys[user] = setup.create_access_key(UserName=user)["AccessKey"]

        def client(service: str, user: str):
            return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id=keys[user]["AccessKeyId"],
                                aws_secret_access_key=keys[user]["SecretAccessKey"])

        client("s3", "builder").create_bucket(Bucket="polyqa-guarded")
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": keys["builder"]["AccessKeyId"],
               "AWS_SECRET_ACCESS_KEY": keys["builder"]["SecretAccessKey"]}
        yield SimpleNamespace(env=env, s3=client("s3", "builder"), iam=client("iam", "admin"))
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def test_a_bucket_that_stops_taking_writes_fails_in_one_line_naming_the_object_and_the_rerun_resumes(
        s3, world, guarded_store, tmp_path):
    """Once 3 units are recorded the builder may no longer write (an IAM Deny of s3:PutObject): the build
    stops with one error line naming the object it could not write; the units recorded stay, with their
    bytes; once writes are allowed again the rerun builds only the rest, to the reference bytes."""
    store = guarded_store
    deny = json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"}]})

    def stored() -> dict[str, bytes]:
        listed = store.s3.list_objects_v2(Bucket="polyqa-guarded", Prefix="corpus/").get("Contents", [])
        return {o["Key"][len("corpus/"):]: store.s3.get_object(Bucket="polyqa-guarded", Key=o["Key"])["Body"].read()
                for o in listed}

    def recorded_units() -> dict[str, dict]:
        return {name: json.loads(data)["shard"] for name, data in stored().items()
                if name.startswith("_work/recorded/")}

    config, output = world.config_file(tmp_path, tmp_path / "cache.sqlite"), "s3://polyqa-guarded/corpus"
    log = tmp_path / "build.log"
    build = start(cli(config, output), log, **store.env)
    try:
        _wait_for(lambda: len(recorded_units()) >= 3 or build.poll() is not None, 300, "no unit was recorded")
        store.iam.put_user_policy(UserName="builder", PolicyName="deny-writes", PolicyDocument=deny)
        assert build.wait(timeout=300) == 2, log.read_text()[-3000:]
        err = log.read_text().strip().splitlines()
        errors = [line for line in err if line.startswith("error:") or "Traceback" in line]
        assert errors == [err[-1]], err[-5:]
        assert err[-1].startswith(f"error: permission denied: {output}/"), err[-1]
        assert "check the credentials and what they may write to the bucket" in err[-1]
        kept, finished = stored(), {e["path"] for e in recorded_units().values()}
        assert 3 <= len(finished) < UNITS and all(path in kept for path in finished)
    finally:
        store.iam.delete_user_policy(UserName="builder", PolicyName="deny-writes")
    log = tmp_path / "rerun.log"
    rerun = start(cli(config, output), log, **store.env)
    assert rerun.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert f"{len(finished)} of {UNITS} shards already done; building {UNITS - len(finished)}" in log.read_text()
    after = stored()
    assert {path: after[path] for path in finished} == {path: kept[path] for path in finished}
    assert {k: v for k, v in after.items() if k.startswith("lang=") and SHARD_RE.match(k.rsplit("/", 1)[1])} == \
        shard_bytes(s3, "reference")
    assert not any(name.startswith("_work/") for name in after)
    validate = subprocess.run(cli(config, output)[:3] + ["validate", output], cwd=REPO, capture_output=True,
                              text=True, env={**os.environ, **store.env})
    assert validate.returncode == 0 and validate.stdout.startswith(f"{output}: OK"), validate.stdout + validate.stderr
