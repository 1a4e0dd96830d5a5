"""The README's examples are tests: every `polyqa` command line parses, the offline ones run from a
folder outside the repository, and every Python snippet runs against a corpus built as the README says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from polyqa import paths
from polyqa.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text("utf-8")
# Subcommands whose README examples run here (offline, seconds); the rest need a hub model, a GPU
# or minutes of encoding and are checked by parsing only.
RUN_HERE = {"build-corpus", "validate", "languages", "tiny-models", "import-parallel", "mine-negatives", "export"}
# Commands the Python snippets read the output of: run when the folder is made, so snippets need no order.
SETUP = ("mine-negatives", "export")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def polyqa_command_lines() -> list[str]:
    lines = []
    for block in code_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if "polyqa " in line and not line.startswith(("export", ".", "pip", "python", "make", "prefect")):
                lines.append(line[line.index("polyqa "):])
    return lines


def data_dir_for_examples() -> Path:
    """Where ``$POLYQA_DATA_DIR`` points for the examples: the release when this machine has it, else the
    committed excerpts (``tests/fixtures`` has the same ``xquad-r/`` layout)."""
    release = paths.data_dir()
    return release if (release / "xquad-r" / "en.json").exists() else REPO / "tests" / "fixtures"


def argv_of(line: str) -> list[str]:
    return [paths.expand(word) for word in shlex.split(line)[1:]]


def test_the_readme_shows_commands():
    assert len(polyqa_command_lines()) >= 8


@pytest.mark.parametrize("line", polyqa_command_lines())
def test_every_polyqa_command_in_the_readme_parses(line):
    parser = build_parser()
    try:
        parser.parse_args(argv_of(line))
    except SystemExit as exc:  # argparse: unknown option, missing argument, bad choice (--help exits 0)
        if exc.code == 0:
            return
        pytest.fail(f"README command does not parse ({exc.code}): {line}")


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    """A folder outside the repository with the default corpus built as the README says."""
    folder = tmp_path_factory.mktemp("readme-user")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "polyqa.cli", "build-corpus", "--output", "out/default-corpus",
                           "--no-progress"], cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for line in polyqa_command_lines():
        if line.split()[1] in SETUP:
            done = subprocess.run([sys.executable, "-m", "polyqa.cli", *argv_of(line)], cwd=folder, env=env,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{line}\n{done.stderr}"
    return folder


@pytest.mark.parametrize("line", [line for line in polyqa_command_lines() if line.split()[1] in RUN_HERE])
def test_offline_readme_commands_run_from_a_folder_outside_the_repository(line, user_folder, monkeypatch):
    monkeypatch.setenv(paths.DATA_VAR, str(data_dir_for_examples()))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "polyqa.cli", *argv_of(line)], cwd=user_folder, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("snippet", code_blocks("python"))
def test_python_snippets_run(snippet, user_folder):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    code = snippet.replace("...", "pass")
    done = subprocess.run([sys.executable, "-c", code], cwd=user_folder, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{snippet}\n{done.stderr}"


def test_every_test_the_readme_cites_exists():
    """The Reliability list names tests: each must exist, so the list cannot outlive what it cites."""
    cited = []
    current = None
    for match in re.finditer(r"`?(test_\w+\.py)?::(test_\w+)`?", README):
        current = match.group(1) or current
        cited.append((current, match.group(2)))
    assert len(cited) >= 20
    for file, name in cited:
        text = (REPO / "tests" / file).read_text("utf-8")
        assert re.search(rf"^def {name}\b", text, re.M), f"README cites {file}::{name}, which does not exist"
    for file in set(re.findall(r"`(test_\w+\.py)`", README)):
        assert (REPO / "tests" / file).is_file(), file
