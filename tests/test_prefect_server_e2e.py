"""End to end through a real Prefect server, exactly as the README says.

    prefect server start --host 127.0.0.1 --port PORT        (own PREFECT_HOME)
    prefect work-pool create polyqa --type process
    POLYQA_HOME=$PWD prefect --no-prompt deploy --name build-corpus/default
    prefect worker start --pool polyqa                       (background)
    prefect deployment run build-corpus/default --watch --param output=... --params '{"config": ...}'
    polyqa validate OUTPUT
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
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_deployment_run_through_prefect_server(tmp_path, tiny_model):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "POLYQA_HOME": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("PREFECT_PROFILES_PATH", None)
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

    def prefect(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        run = subprocess.run([str(BIN / "prefect"), *args], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=timeout)
        assert run.returncode == 0, f"prefect {' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        return run

    server_log = tmp_path / "server.log"
    worker_log = tmp_path / "worker.log"
    with open(server_log, "w") as slog:
        server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  cwd=tmp_path, env=env, stdout=slog, stderr=subprocess.STDOUT, start_new_session=True)
    worker = None
    try:
        wait_healthy(api, server, server_log)
        prefect("work-pool", "create", "polyqa", "--type", "process")
        prefect("--no-prompt", "deploy", "--name", "build-corpus/default")
        with open(worker_log, "w") as wlog:
            worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "polyqa"], cwd=REPO, env=env,
                                      stdout=wlog, stderr=subprocess.STDOUT, start_new_session=True)
        run = prefect("deployment", "run", "build-corpus/default", "--watch", "--watch-timeout", "240",
                      "--param", f"output={json.dumps(str(output))}", "--params", json.dumps({"config": config}),
                      timeout=300)
        assert "Completed" in run.stdout, run.stdout[-3000:] + worker_log.read_text()[-3000:]
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
    report = validate_corpus(output)
    assert report.ok, report.text() + "\n" + worker_log.read_text()[-3000:]
    assert report.rows == {"eng_Latn": 20, "deu_Latn": 20, "fra_Latn": 20}
    assert (tmp_path / "cards" / "e2e-corpus.md").exists()
    assert "translate-shard-1-fra_Latn" in worker_log.read_text()
