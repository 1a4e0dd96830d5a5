"""Screenshots of the Prefect UI for the README (`make screenshot`).

Runs the README's Prefect section for real, in throw-away folders, offline:

    prefect server start --host 127.0.0.1 --port PORT       (a temporary PREFECT_HOME)
    prefect work-pool create polyqa --type process
    POLYQA_PROJECT_DIR=$PWD prefect --no-prompt deploy --all   (prefect.yaml as shipped)
    prefect worker start --pool polyqa
    prefect deployment run build-corpus/default --watch       (output in the temporary folder)

waits for the chain that run triggers (train-retriever/on-new-corpus, then
evaluate-retriever/on-new-model), then opens the UI in headless Chromium and writes

    docs/images/prefect-run-artifacts.png   the build-corpus run, Artifacts tab
    docs/images/prefect-artifacts.png       every artifact the chain published
    docs/images/prefect-event-chain.png     the event feed: built -> trained, each triggering the next run

It never touches your Prefect profile or your polyqa caches: PREFECT_HOME and POLYQA_HOME are
temporary and every inherited PREFECT_* variable is dropped; it stops the server, the worker and
the browser it started. Needs Chromium (`apt-get install chromium`) or CHROMIUM=/path/to/chrome.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WIDTH = 1400
MAX_PNG_BYTES = 400_000
# The chain's two hand-offs, read bottom-up in the event feed: the build's event, the automation
# that starts training, the training's event, the automation that starts evaluation.
CHAIN_EVENTS = ("polyqa.corpus.built", "polyqa.retriever.trained", "prefect.automation.action.executed")


def log(message: str) -> None:
    print(f"[screenshot] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen | None) -> None:
    """Stop a process group this script started (SIGINT, then SIGTERM, then SIGKILL)."""
    if process is None or process.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


class Prefect:
    """A real Prefect server on 127.0.0.1 with its own PREFECT_HOME, the polyqa pool and a worker."""

    def __init__(self, work: Path):
        self.work = work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({
            "PREFECT_HOME": str(work / "prefect-home"),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "POLYQA_PROJECT_DIR": str(REPO),
            "POLYQA_HOME": str(work / "polyqa-home"),  # empty: the tiny model is built cold, no download
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        self.env = env
        self.server_log = work / "server.log"
        self.worker_log = work / "worker.log"
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def __enter__(self) -> "Prefect":
        (self.work / "polyqa-home").mkdir()
        with open(self.server_log, "w") as out:
            self.server = subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.work, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_healthy()
        self.cli("work-pool", "create", "polyqa", "--type", "process")
        with open(self.worker_log, "w") as out:
            self.worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "polyqa"],
                                           cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        return self

    def __exit__(self, *exc) -> None:
        stop(self.worker)
        stop(self.server)

    def _wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                sys.exit(f"prefect server exited with {self.server.returncode}:\n{tail(self.server_log)}")
            try:
                with urllib.request.urlopen(f"{self.api}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        sys.exit(f"prefect server not healthy after {timeout} s:\n{tail(self.server_log)}")

    def cli(self, *args: str, timeout: float = 300) -> str:
        run = subprocess.run([str(BIN / "prefect"), *args], cwd=REPO, env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        if run.returncode != 0:
            sys.exit(f"prefect {' '.join(args)} failed ({run.returncode}):\n{run.stdout[-3000:]}\n"
                     f"{run.stderr[-3000:]}\nworker log:\n{tail(self.worker_log)}")
        return run.stdout

    def post(self, path: str, body: dict):
        request = urllib.request.Request(f"{self.api}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def flow_runs(self, flow_name: str) -> list[dict]:
        return self.post("/flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}})

    def wait_completed(self, flow_name: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in self.flow_runs(flow_name):
                state = run.get("state_type")
                if state == "COMPLETED":
                    return run
                if state in ("FAILED", "CRASHED", "CANCELLED"):
                    sys.exit(f"{flow_name} run {run['name']} ended {state}:\n{tail(self.worker_log)}")
            time.sleep(2)
        sys.exit(f"no completed {flow_name} run after {timeout} s:\n{tail(self.worker_log)}")


def find_chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                      "google-chrome-stable"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    sys.exit("no Chromium found: `apt-get install chromium` (Debian/Ubuntu) or set CHROMIUM=/path/to/chrome")


class Browser:
    """Headless Chromium driven through the Chrome DevTools protocol (websockets comes with prefect)."""

    def __init__(self, executable: str, work: Path, width: int = WIDTH, height: int = 1000):
        from websockets.sync.client import connect

        self.work = work
        profile = work / "chromium"
        profile.mkdir()
        port = free_port()
        args = [executable, "--headless=new", f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={profile}", f"--window-size={width},{height}", "--hide-scrollbars",
                "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-breakpad", "--force-color-profile=srgb", "--lang=en-US", "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        # HOME and TZ only for the browser: its crash reports stay in the temporary folder, times show in UTC.
        env = {**os.environ, "HOME": str(profile), "TZ": "UTC"}
        self.process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + 30
        page = None
        while page is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as response:
                    page = next(t for t in json.loads(response.read()) if t["type"] == "page")
            except (OSError, StopIteration, ValueError):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    stop(self.process)
                    sys.exit(f"{executable} did not start its DevTools endpoint")
                time.sleep(0.2)
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.next_id = 0
        self.call("Page.enable")
        self.resize(width, height)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            stop(self.process)

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def resize(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'", f"{url} to load")

    def wait(self, expression: str, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.js(f"(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"):
                return
            time.sleep(0.25)
        self.capture(self.work / "timeout.png")
        raise TimeoutError(f"the Prefect UI did not show {what} within {timeout} s "
                           f"(the page is in {self.work / 'timeout.png'})")

    def wait_text(self, *texts: str, what: str) -> None:
        self.wait(" && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts), what)

    def settle(self, seconds: float = 2.0) -> None:
        """After the awaited content is there: fonts loaded, then a pause for transitions and late requests."""
        self.js("document.fonts.ready.then(() => true)")
        time.sleep(seconds)

    def content_height(self, selector: str, margin: int = 24) -> int:
        """Bottom edge (page pixels) of the last element matching selector."""
        bottom = self.js(f"Math.max(...[...document.querySelectorAll({json.dumps(selector)})]"
                         ".map(e => e.getBoundingClientRect().bottom + window.scrollY))")
        return int(bottom) + margin

    def capture(self, path: Path, height: int | None = None) -> None:
        params = {"format": "png"}
        if height:
            params.update(clip={"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1},
                          captureBeyondViewport=True)
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        path.write_bytes(data)


def shrink(path: Path) -> None:
    """Keep the PNG small: palette quantisation (the UI has few colours) when it is over the budget."""
    from PIL import Image

    if path.stat().st_size <= MAX_PNG_BYTES:
        return
    image = Image.open(path).convert("RGB")
    for colors in (256, 128, 64):
        buffer = io.BytesIO()
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_PNG_BYTES:
            break
    path.write_bytes(buffer.getvalue())


def run_chain(prefect: Prefect, work: Path) -> dict:
    log(f"prefect server on {prefect.url} (PREFECT_HOME {prefect.env['PREFECT_HOME']})")
    prefect.cli("--no-prompt", "deploy", "--all")
    log("deployed prefect.yaml; running build-corpus/default (tiny model, offline)")
    output = work / "default-corpus"  # the deployment's own output is out/default-corpus in the checkout
    prefect.cli("deployment", "run", "build-corpus/default", "--watch", "--watch-timeout", "900",
                "--param", f"output={json.dumps(str(output))}", timeout=960)
    build = prefect.wait_completed("build-corpus", 60)
    log(f"build-corpus {build['name']} completed; waiting for the triggered training and evaluation")
    prefect.wait_completed("train-retriever", 1200)
    prefect.wait_completed("evaluate-retriever", 900)
    time.sleep(3)  # let the last events land in the feed
    return build


def take_screenshots(prefect: Prefect, browser: Browser, build: dict, out_dir: Path) -> list[Path]:
    shots = []
    ui = prefect.url

    # 1. The build-corpus run's page, Artifacts tab: the run graph (its build-shard tasks), the progress, the card and the table.
    path = out_dir / "prefect-run-artifacts.png"
    browser.resize(WIDTH, 1000)
    browser.goto(f"{ui}/runs/flow-run/{build['id']}")
    browser.wait("[...document.querySelectorAll('li.p-tab')].some(e => e.textContent.trim() === 'Artifacts')",
                 "the flow run's tabs")
    browser.js("[...document.querySelectorAll('li.p-tab')].find(e => e.textContent.trim() === 'Artifacts').click()")
    browser.wait_text("corpus-progress", "corpus-card", "corpus-languages", what="the build's artifacts")
    browser.settle()
    browser.capture(path, min(browser.content_height(".artifact-card, .p-card"), 1000))
    shots.append(path)

    # 2. Every artifact of the chain: the build's card, table and progress, the training run, the evaluation.
    path = out_dir / "prefect-artifacts.png"
    keys = ["corpus-progress", "corpus-languages", "corpus-card", "training-run", "evaluation-results",
            "evaluation-report"]
    browser.goto(f"{ui}/artifacts")
    browser.wait_text(*keys, what="the chain's artifacts")
    browser.settle()
    browser.capture(path, browser.content_height(".artifact-card, .p-card"))
    shots.append(path)

    # 3. The event feed, only the chain's hand-offs: corpus built -> automation starts training ->
    #    retriever trained -> automation starts evaluation (newest first).
    path = out_dir / "prefect-event-chain.png"
    browser.resize(WIDTH, 1400)
    query = "&".join(f"events={name}" for name in CHAIN_EVENTS)
    browser.goto(f"{ui}/events?{query}")
    browser.wait_text("polyqa.corpus.built", "polyqa.retriever.trained", "on-new-corpus__automation_1",
                      "on-new-model__automation_1", what="the chain's events")
    browser.settle()
    browser.capture(path, min(browser.content_height(".p-card, .event-card, .p-timeline-item"), 1400))
    shots.append(path)
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (server and worker logs, the corpus) and print its path")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="polyqa-screenshot-"))
    ok = False
    try:
        with Prefect(work) as prefect:
            build = run_chain(prefect, work)
            browser = Browser(chromium, work)
            try:
                shots = take_screenshots(prefect, browser, build, args.output_dir)
            finally:
                browser.close()
        for path in shots:
            shrink(path)
            log(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} "
                f"({path.stat().st_size // 1000} KB)")
        ok = True
    finally:
        if args.keep or not ok:
            log(f"logs and outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
