"""End to end through a real Prefect server, exactly as the README says.

    prefect server start --host 127.0.0.1 --port PORT        (own PREFECT_HOME)
    prefect work-pool create polyqa --type process
    POLYQA_PROJECT_DIR=$PWD prefect --no-prompt deploy --name build-corpus/default
    prefect worker start --pool polyqa                       (background)
    prefect deployment run build-corpus/default --watch --param output=... --params '{"config": ...}'
    polyqa validate OUTPUT

and the downstream chain of prefect.yaml: a finished build triggers training, a finished
training triggers evaluation (deployment triggers on polyqa's own events).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from polyqa.corpus.manifest import Manifest
from polyqa.corpus.validate import validate_corpus

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prefect server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the process group we started, nothing else
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass
class PrefectServer:
    api: str
    env: dict[str, str]
    worker_log: Path

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        run = subprocess.run([str(BIN / "prefect"), *args], cwd=REPO, env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        assert run.returncode == 0, f"prefect {' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        return run

    def api_get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.api}{path}", timeout=10) as response:
            return json.loads(response.read())

    def flow_runs(self, flow_name: str) -> list[dict]:
        body = json.dumps({"flows": {"name": {"any_": [flow_name]}}}).encode()
        request = urllib.request.Request(f"{self.api}/flow_runs/filter", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """A real `prefect server start` on 127.0.0.1, the `polyqa` process pool and a worker."""
    tmp_path = tmp_path_factory.mktemp("prefect")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "POLYQA_PROJECT_DIR": str(REPO),
        "POLYQA_HOME": str(tmp_path / "polyqa-home"),  # empty, as on a fresh machine
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("PREFECT_PROFILES_PATH", None)
    server_log = tmp_path / "server.log"
    worker_log = tmp_path / "worker.log"
    with open(server_log, "w") as slog:
        server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  cwd=tmp_path, env=env, stdout=slog, stderr=subprocess.STDOUT, start_new_session=True)
    worker = None
    try:
        wait_healthy(api, server, server_log)
        handle = PrefectServer(api, env, worker_log)
        handle.cli("work-pool", "create", "polyqa", "--type", "process")
        with open(worker_log, "w") as wlog:
            worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "polyqa"], cwd=REPO, env=env,
                                      stdout=wlog, stderr=subprocess.STDOUT, start_new_session=True)
        yield handle
    finally:
        if worker is not None:
            stop(worker)
        stop(server)


@pytest.mark.slow
def test_deployment_run_through_prefect_server(tmp_path, tiny_model, prefect_server):
    data = json.loads(resources.files("polyqa.data").joinpath("default_sample.json").read_text("utf-8"))
    data["data"] = data["data"][:4]  # 20 QA pairs
    (tmp_path / "subset.json").write_text(json.dumps(data))
    config = {
        "name": "e2e-corpus", "sources": [{"kind": "squad_json", "path": str(tmp_path / "subset.json")}],
        "languages": ["de", "fr"], "shard_rows": 10, "model": "tiny",
        "tiny_model_dir": str(tiny_model.hf_dir.parent), "cache": str(tmp_path / "cache.sqlite"),
        "decoding": {"beam_size": 1, "max_length_ratio": 1.2, "max_length_extra": 4},
        "card_dir": str(tmp_path / "cards"),
    }
    output = tmp_path / "corpus"
    prefect_server.cli("--no-prompt", "deploy", "--name", "build-corpus/default")
    run = prefect_server.cli("deployment", "run", "build-corpus/default", "--watch", "--watch-timeout", "240",
                             "--param", f"output={json.dumps(str(output))}", "--params", json.dumps({"config": config}),
                             timeout=300)
    worker_log = prefect_server.worker_log
    assert "Completed" in run.stdout, run.stdout[-3000:] + worker_log.read_text()[-3000:]
    report = validate_corpus(output)
    assert report.ok, report.text() + "\n" + worker_log.read_text()[-3000:]
    assert report.rows == {"eng_Latn": 20, "deu_Latn": 20, "fra_Latn": 20}
    assert (tmp_path / "cards" / "e2e-corpus.md").exists()
    assert "build-shard-1-fra_Latn" in worker_log.read_text()


def _wait_completed(server: PrefectServer, flow_name: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = server.flow_runs(flow_name)
        for flow_run in runs:
            state = (flow_run.get("state") or {}).get("type")
            if state == "COMPLETED":
                return flow_run
            if state in ("FAILED", "CRASHED", "CANCELLED"):
                pytest.fail(f"{flow_name} run {flow_run['name']} ended {state}:\n"
                            + server.worker_log.read_text()[-4000:])
        time.sleep(2)
    pytest.fail(f"no completed {flow_name} run after {timeout} s (runs: {[r.get('state_type') for r in runs]}):\n"
                + server.worker_log.read_text()[-4000:])


@pytest.mark.slow
def test_build_triggers_training_then_evaluation(tmp_path, prefect_server):
    """prefect.yaml as shipped, as a user runs it: build-corpus/default translates the embedded default
    corpus with the tiny model (built cold into an empty POLYQA_HOME, no network), which triggers
    training on it with a quarter of its articles held out, which triggers evaluation on those
    articles of the same corpus. Only the training is shrunk to test scale."""
    # The whole file deploys as the README says, the scheduled refresh with its schedule off.
    prefect_server.cli("--no-prompt", "deploy", "--all")
    refresh = prefect_server.api_get("/deployments/name/build-corpus/scheduled-refresh")
    assert [(s["schedule"]["cron"], s["active"]) for s in refresh["schedules"]] == [("0 3 * * 1", False)]
    assert refresh["parameters"]["refresh"] is True
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    chain = {}
    for deployment in spec["deployments"]:
        name = deployment["entrypoint"].split(":")[1] + "/" + deployment["name"]
        if deployment.get("triggers"):
            chain[name] = deployment
    train, evaluate = chain["train_retriever_flow/on-new-corpus"], chain["evaluate_retriever/on-new-model"]
    train_config = yaml.safe_load((REPO / train["parameters"]["config_path"]).read_text())
    train_config.update(max_steps=2, batch_size=4, max_seq_length=32, checkpoint_steps=100)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train_config))
    train["parameters"]["config_path"] = str(tmp_path / "train.yaml")
    spec["deployments"] = [d for d in spec["deployments"] if d["name"] == "default"
                           and d["entrypoint"].startswith("flows/build_corpus.py")] + [train, evaluate]
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    prefect_server.cli("--no-prompt", "deploy", "--all", "--prefect-file", str(tmp_path / "prefect.yaml"))

    output = tmp_path / "default-corpus"  # the deployment's own output is out/default-corpus in the checkout
    run = prefect_server.cli("deployment", "run", "build-corpus/default", "--watch", "--watch-timeout", "400",
                             "--param", f"output={json.dumps(str(output))}", timeout=450)
    assert "Completed" in run.stdout, run.stdout[-3000:] + prefect_server.worker_log.read_text()[-3000:]
    report = validate_corpus(output)
    assert report.ok, report.text()
    langs = ["deu_Latn", "eng_Latn", "fra_Latn", "spa_Latn"]
    assert report.rows == {lang: 110 for lang in langs}
    manifest = Manifest.load(output)
    assert manifest.model()["model"] == "tiny" and manifest.translates()
    assert (Path(prefect_server.env["POLYQA_HOME"]) / "models").is_dir()  # the tiny model, built cold
    for lang in ("deu_Latn", "fra_Latn", "spa_Latn"):  # every translated row keeps its answer sentence
        assert manifest.statistics()[lang]["answer_sentence"] == {"aligned": 110}

    _wait_completed(prefect_server, "train-retriever", 600)
    _wait_completed(prefect_server, "evaluate-retriever", 300)
    run_dir = Path(f"{output}.retriever")
    info = json.loads((run_dir / "model" / "polyqa_training.json").read_text())
    assert sorted(info["languages"]) == langs and info["steps"] == 2
    heldout = (run_dir / "heldout_articles.txt").read_text("utf-8").split("\n")
    heldout = [title for title in heldout if title]
    assert len(heldout) == round(22 * train_config["heldout_fraction"])
    record = json.loads((run_dir / "run_record.json").read_text())
    for lang in langs:  # held-out articles are skipped and counted; the babble is not filtered out
        assert record["skipped_rows"][lang]["held_out_article"] == 5 * len(heldout)
        assert record["skipped_rows"][lang]["quality_pass_false"] == 0
        assert record["usable_rows"][lang] == 110 - 5 * len(heldout)
    result = json.loads((run_dir / "evaluation" / "polyqa-corpus.json").read_text())
    assert result["benchmark"] == "polyqa-corpus" and result["data_dir"] == str(output.resolve())
    assert result["model"] == str((run_dir / "model").resolve())
    assert result["counts"]["question_ids"] == 5 * len(heldout)  # exactly the held-out articles' questions
    assert 0 < result["settings"]["multilingual"]["mAP"] <= 1
    assert result["seen_unseen"]["training_languages"] == langs
