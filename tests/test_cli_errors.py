"""Every `polyqa` subcommand fails the same way: one line on stderr starting with ``error: ``, exit code 2,
no traceback (``--debug`` shows it). Driven in-process through ``polyqa.cli.main`` and, for a few, through
the installed ``polyqa`` executable.

Failure cases: bad paths, a file where a folder is expected, a folder that is not a corpus or not a model,
unreadable or non-UTF-8 files, invalid config values (zero or negative sizes, out-of-range ratios, unknown
keys, languages and model aliases) and a disk that fills up while writing.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from corpus_fixtures import build_xquad_corpus

from polyqa.cli import main

POLYQA = Path(sys.executable).with_name("polyqa")
LATIN1 = "corpus: caf\xe9\noutput_dir: o\n".encode("latin-1")  # a config saved in latin-1, not UTF-8


@pytest.fixture(scope="module")
def w(tmp_path_factory, xquad_r_dir) -> SimpleNamespace:
    """A workspace of good and bad inputs shared by the cases."""
    from polyqa.tiny_encoder import build_tiny_encoder

    root = tmp_path_factory.mktemp("cli-errors")
    ns = SimpleNamespace(root=root)
    ns.file = root / "notes.txt"
    ns.file.write_text("not a folder\n")
    ns.empty = root / "empty"
    ns.empty.mkdir()
    ns.missing = root / "missing"
    ns.latin1 = root / "latin1.yaml"
    ns.latin1.write_bytes(LATIN1)
    ns.bad_yaml = root / "bad.yaml"
    ns.bad_yaml.write_text("corpus: [unclosed\n")
    ns.list_yaml = root / "list.yaml"
    ns.list_yaml.write_text("- just\n- a list\n")
    ns.corpus = build_xquad_corpus(xquad_r_dir, root / "corpus", langs=("en", "de"), limit=40)
    ns.model = build_tiny_encoder(["a river runs through the city"] * 4, root / "encoder", vocab_size=60,
                                  hidden_size=8, layers=1, heads=1)
    ns.not_model = root / "not-a-model"
    ns.not_model.mkdir()
    (ns.not_model / "weights.txt").write_text("x")
    # SQuAD folders: a good one, one with a latin-1 file, one with broken JSON.
    ns.squad = root / "squad"
    ns.squad.mkdir()
    for lang in ("en", "de"):
        doc = json.loads((xquad_r_dir / f"{lang}.json").read_text(encoding="utf-8"))
        doc["data"] = doc["data"][:1]
        (ns.squad / f"{lang}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    ns.squad_latin1 = root / "squad-latin1"
    ns.squad_latin1.mkdir()
    (ns.squad_latin1 / "en.json").write_bytes('{"data": [{"title": "caf\xe9", "paragraphs": []}]}'
                                               .encode("latin-1"))
    ns.squad_broken = root / "squad-broken"
    ns.squad_broken.mkdir()
    (ns.squad_broken / "en.json").write_text('{"data": [')
    ns.titles_latin1 = root / "titles.txt"
    ns.titles_latin1.write_bytes("Caf\xe9\n".encode("latin-1"))
    return ns


def train_yaml(w, name: str, **settings) -> str:
    base = {"corpus": str(w.corpus), "output_dir": str(w.root / "runs" / name), "base_model": str(w.model),
            "batch_size": 4, "max_steps": 1, "max_seq_length": 16}
    path = w.root / f"train-{name}.yaml"
    path.write_text(yaml.safe_dump({**base, **settings}))
    return str(path)


def study_yaml(w, name: str, **settings) -> str:
    base = {"name": name, "results_dir": str(w.root / "study" / name / "results"),
            "work_dir": str(w.root / "study" / name / "work"), "corpus": str(w.corpus), "base_model": str(w.model),
            "language_order": ["en", "de"], "language_counts": [1], "strategies": ["x-x-mono"],
            "include_zero_shot": False, "train": {"batch_size": 4, "max_steps": 1},
            "evaluate": [{"benchmark": "lareqa", "data_dir": str(w.squad)}]}
    path = w.root / f"study-{name}.yaml"
    path.write_text(yaml.safe_dump({**base, **settings}))
    return str(path)


def build_yaml(w, name: str, **settings) -> str:
    base = {"name": name, "sources": ["polyqa_sample"], "languages": ["de"], "model": None}
    path = w.root / f"build-{name}.yaml"
    path.write_text(yaml.safe_dump({**base, **settings}))
    return str(path)


def evaluate(w, *extra: str, model=None, benchmark: str = "lareqa", data_dir=None) -> list[str]:
    return ["evaluate", "--model", str(model or w.model), "--benchmark", benchmark,
            "--data-dir", str(data_dir or w.squad), "--output", str(w.root / "eval" / "out.json"), *extra]


# (case id, argv from the workspace, text the error line must contain)
CASES = [
    # build-corpus
    ("build-corpus: missing config", lambda w: ["build-corpus", "--config", str(w.missing), "--output",
                                                str(w.root / "b1")], "missing"),
    ("build-corpus: config is a folder", lambda w: ["build-corpus", "--config", str(w.empty), "--output",
                                                    str(w.root / "b2")], "empty"),
    ("build-corpus: latin-1 config", lambda w: ["build-corpus", "--config", str(w.latin1), "--output",
                                                str(w.root / "b3")], "UTF-8"),
    ("build-corpus: invalid YAML", lambda w: ["build-corpus", "--config", str(w.bad_yaml), "--output",
                                              str(w.root / "b4")], "bad.yaml"),
    ("build-corpus: unknown key", lambda w: ["build-corpus", "--config", build_yaml(w, "k", shard_rowz=5),
                                             "--output", str(w.root / "b5")], "shard_rowz"),
    ("build-corpus: zero shard rows", lambda w: ["build-corpus", "--config", build_yaml(w, "z"), "--output",
                                                 str(w.root / "b6"), "--shard-rows", "0"], "shard_rows"),
    ("build-corpus: negative shard rows", lambda w: ["build-corpus", "--config", build_yaml(w, "n", shard_rows=-3),
                                                     "--output", str(w.root / "b7")], "shard_rows"),
    ("build-corpus: unknown language", lambda w: ["build-corpus", "--config", build_yaml(w, "l"), "--output",
                                                  str(w.root / "b8"), "--languages", "de,klingon"], "klingon"),
    ("build-corpus: output is a file", lambda w: ["build-corpus", "--config", build_yaml(w, "f"), "--output",
                                                  str(w.file)], "notes.txt"),
    # import-parallel
    ("import-parallel: missing folder", lambda w: ["import-parallel", str(w.missing), "--output",
                                                   str(w.root / "i1")], "missing"),
    ("import-parallel: a file, not a folder", lambda w: ["import-parallel", str(w.file), "--output",
                                                         str(w.root / "i2")], "notes.txt"),
    ("import-parallel: folder without language files", lambda w: ["import-parallel", str(w.empty), "--output",
                                                                  str(w.root / "i3")], "empty"),
    ("import-parallel: latin-1 file", lambda w: ["import-parallel", str(w.squad_latin1), "--output",
                                                 str(w.root / "i4")], "UTF-8"),
    ("import-parallel: broken JSON", lambda w: ["import-parallel", str(w.squad_broken), "--output",
                                                str(w.root / "i5")], "en.json"),
    ("import-parallel: zero shard rows", lambda w: ["import-parallel", str(w.squad), "--output", str(w.root / "i6"),
                                                    "--shard-rows", "0"], "shard_rows"),
    ("import-parallel: unknown language", lambda w: ["import-parallel", str(w.squad), "--output",
                                                     str(w.root / "i7"), "--languages", "en,klingon"], "klingon"),
    ("import-parallel: output is a file", lambda w: ["import-parallel", str(w.squad), "--output", str(w.file)],
     "notes.txt"),
    # validate
    ("validate: missing folder", lambda w: ["validate", str(w.missing)], "missing"),
    ("validate: a file", lambda w: ["validate", str(w.file)], "notes.txt"),
    ("validate: not a corpus", lambda w: ["validate", str(w.empty)], "empty"),
    # translate
    ("translate: missing model folder", lambda w: ["translate", "--model", str(w.missing), "--source", "en",
                                                   "--target", "de", "--input", str(w.file)], "missing"),
    ("translate: folder that is not a model", lambda w: ["translate", "--model", str(w.not_model), "--source", "en",
                                                         "--target", "de", "--input", str(w.file)], "not-a-model"),
    ("translate: missing input", lambda w: ["translate", "--model", str(w.not_model), "--source", "en",
                                            "--target", "de", "--input", str(w.missing)], "missing"),
    ("translate: input is a folder", lambda w: ["translate", "--model", str(w.not_model), "--source", "en",
                                                "--target", "de", "--input", str(w.empty)], "empty"),
    ("translate: latin-1 input", lambda w: ["translate", "--model", str(w.not_model), "--source", "en",
                                            "--target", "de", "--input", str(w.latin1)], "UTF-8"),
    ("translate: unknown source language", lambda w: ["translate", "--model", str(w.not_model), "--source",
                                                      "klingon", "--target", "de", "--input", str(w.file)], "klingon"),
    ("translate: unknown target language", lambda w: ["translate", "--model", str(w.not_model), "--source", "en",
                                                      "--target", "de,xx", "--input", str(w.file)], "xx"),
    ("translate: zero beam size", lambda w: ["translate", "--model", str(w.not_model), "--source", "en", "--target",
                                             "de", "--input", str(w.file), "--beam-size", "0"], "beam-size"),
    ("translate: negative batch tokens", lambda w: ["translate", "--model", str(w.not_model), "--source", "en",
                                                    "--target", "de", "--input", str(w.file),
                                                    "--max-batch-tokens", "-5"], "max-batch-tokens"),
    ("translate: bad device index", lambda w: ["translate", "--model", str(w.not_model), "--source", "en",
                                               "--target", "de", "--input", str(w.file), "--device-index", "a"],
     "device-index"),
    # tiny-models
    ("tiny-models: output is a file", lambda w: ["tiny-models", "--output", str(w.file)], "notes.txt"),
    ("tiny-models: unknown quantization", lambda w: ["tiny-models", "--output", str(w.root / "t1"),
                                                     "--quantization", "int3"], "int3"),
    # train
    ("train: missing config", lambda w: ["train", "--config", str(w.missing)], "missing"),
    ("train: config is a folder", lambda w: ["train", "--config", str(w.empty)], "empty"),
    ("train: latin-1 config", lambda w: ["train", "--config", str(w.latin1)], "UTF-8"),
    ("train: invalid YAML", lambda w: ["train", "--config", str(w.bad_yaml)], "bad.yaml"),
    ("train: config not a mapping", lambda w: ["train", "--config", str(w.list_yaml)], "list.yaml"),
    ("train: unknown key", lambda w: ["train", "--config", train_yaml(w, "k", batchsize=4)], "batchsize"),
    ("train: zero batch size", lambda w: ["train", "--config", train_yaml(w, "b", batch_size=0)], "batch_size"),
    ("train: negative steps", lambda w: ["train", "--config", train_yaml(w, "s"), "--max-steps", "-1"], "max_steps"),
    ("train: alpha out of range", lambda w: ["train", "--config", train_yaml(w, "a", alpha=1.5)], "alpha"),
    ("train: zero learning rate", lambda w: ["train", "--config", train_yaml(w, "lr", learning_rate=0)],
     "learning_rate"),
    ("train: unknown language", lambda w: ["train", "--config", train_yaml(w, "l", languages=["en", "klingon"])],
     "klingon"),
    ("train: unknown strategy", lambda w: ["train", "--config", train_yaml(w, "st", strategy="mono")], "strategy"),
    ("train: unknown model alias", lambda w: ["train", "--config", train_yaml(w, "m", base_model="xlmr")], "xlmr"),
    ("train: model folder is not a model", lambda w: ["train", "--config",
                                                      train_yaml(w, "nm", base_model=str(w.not_model))],
     "not-a-model"),
    ("train: corpus missing", lambda w: ["train", "--config", train_yaml(w, "cm"), "--corpus", str(w.missing)],
     "missing"),
    ("train: corpus is a file", lambda w: ["train", "--config", train_yaml(w, "cf"), "--corpus", str(w.file)],
     "notes.txt"),
    ("train: folder is not a corpus", lambda w: ["train", "--config", train_yaml(w, "cn"), "--corpus", str(w.empty)],
     "not a polyqa corpus"),
    ("train: output is a file", lambda w: ["train", "--config", train_yaml(w, "of"), "--output-dir", str(w.file)],
     "notes.txt"),
    ("train: latin-1 titles file", lambda w: ["train", "--config",
                                              train_yaml(w, "tl", exclude_titles_file=str(w.titles_latin1))],
     "UTF-8"),
    ("train: heldout fraction out of range", lambda w: ["train", "--config",
                                                        train_yaml(w, "hf", heldout_fraction=1.2)],
     "heldout_fraction"),
    # evaluate
    ("evaluate: missing model folder", lambda w: evaluate(w, model="./no/such/model"), "no/such/model"),
    ("evaluate: model is a file", lambda w: evaluate(w, model=w.file), "notes.txt"),
    ("evaluate: folder is not a model", lambda w: evaluate(w, model=w.not_model), "not-a-model"),
    ("evaluate: unknown model alias", lambda w: evaluate(w, model="labsee"), "labsee"),
    ("evaluate: unknown benchmark", lambda w: evaluate(w, benchmark="xquad"), "xquad"),
    ("evaluate: missing data folder", lambda w: evaluate(w, data_dir=w.missing), "missing"),
    ("evaluate: data folder is a file", lambda w: evaluate(w, data_dir=w.file), "notes.txt"),
    ("evaluate: latin-1 benchmark file", lambda w: evaluate(w, data_dir=w.squad_latin1), "UTF-8"),
    ("evaluate: broken JSON", lambda w: evaluate(w, data_dir=w.squad_broken), "en.json"),
    ("evaluate: folder is not a corpus", lambda w: evaluate(w, benchmark="polyqa-corpus", data_dir=w.empty),
     "not a polyqa corpus"),
    ("evaluate: zero batch size", lambda w: evaluate(w, "--batch-size", "0"), "batch_size"),
    ("evaluate: negative max questions", lambda w: evaluate(w, "--max-questions", "-1"), "max_questions"),
    ("evaluate: unknown language", lambda w: evaluate(w, "--languages", "en,klingon"), "klingon"),
    ("evaluate: missing articles file", lambda w: evaluate(w, "--articles-file", str(w.missing)), "missing"),
    ("evaluate: latin-1 articles file", lambda w: evaluate(w, "--articles-file", str(w.titles_latin1)), "UTF-8"),
    ("evaluate: output under a file", lambda w: ["evaluate", "--model", str(w.model), "--benchmark", "lareqa",
                                                 "--data-dir", str(w.squad), "--output",
                                                 str(w.file / "out.json"), "--no-cache"], "notes.txt"),
    # study
    ("study: missing config", lambda w: ["study", "--config", str(w.missing)], "missing"),
    ("study: latin-1 config", lambda w: ["study", "--config", str(w.latin1)], "UTF-8"),
    ("study: unknown key", lambda w: ["study", "--config", study_yaml(w, "k", langauge_order=["en"])],
     "langauge_order"),
    ("study: zero language count", lambda w: ["study", "--config", study_yaml(w, "c", language_counts=[0])],
     "language_counts"),
    ("study: unknown language", lambda w: ["study", "--config", study_yaml(w, "l", unseen=["klingon"])], "klingon"),
    ("study: unknown strategy", lambda w: ["study", "--config", study_yaml(w, "s", strategies=["mono"])], "mono"),
    ("study: heldout fraction out of range", lambda w: ["study", "--config", study_yaml(
        w, "h", split={"data_dir": str(w.squad), "heldout_fraction": 0})], "heldout_fraction"),
    ("study: zero training batch", lambda w: ["study", "--config", study_yaml(w, "b", train={"batch_size": 0})],
     "batch_size"),
    ("study: unknown model alias", lambda w: ["study", "--config", study_yaml(w, "m", base_model="minilmm")],
     "minilmm"),
    ("study: corpus folder is not a corpus", lambda w: ["study", "--config", study_yaml(w, "nc", corpus=str(w.empty))],
     "empty"),
    # export, mine-negatives
    ("export: folder is not a corpus", lambda w: ["export", str(w.empty), "--format", "beir", "--output",
                                                   str(w.root / "exp")], "empty"),
    ("export: unknown format", lambda w: ["export", str(w.empty), "--format", "dpr", "--output", "x"], "dpr"),
    ("export: settings that exclude each other", lambda w: ["export", str(w.empty), "--format", "beir", "--output",
                                                            "x", "--keep-scores"], "keep_scores"),
    ("mine-negatives: folder is not a corpus", lambda w: ["mine-negatives", str(w.empty), "--model", "minilm"],
     "empty"),
    # languages
    ("languages: unknown code", lambda w: ["languages", "de", "klingon"], "klingon"),
]


def _check_one_error_line(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize("case, argv, needle", CASES, ids=[c[0] for c in CASES])
def test_every_subcommand_fails_with_one_error_line_and_exit_2(case, argv, needle, w, capsys):
    capsys.readouterr()
    code = main(argv(w))
    err = capsys.readouterr().err
    _check_one_error_line(code, err, needle)


def test_every_subcommand_is_covered():
    from polyqa.cli import build_parser

    parser = build_parser()
    commands = set(next(a for a in parser._actions if a.dest == "command").choices)
    assert commands == {case.split(":")[0] for case, _, _ in CASES}


# --------------------------------------------------------------------------- a disk that fills up


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "/data/out")


def test_a_full_disk_while_training_is_one_error_line(w, monkeypatch, capsys):
    from polyqa.train import record

    monkeypatch.setattr(record, "write_training_info", _disk_full)
    code = main(["train", "--config", train_yaml(w, "full")])
    err = capsys.readouterr().err
    _check_one_error_line(code, err, "the disk is full")
    assert "finished work is kept" in err


def test_a_full_disk_while_evaluating_is_one_error_line(w, monkeypatch, capsys):
    import numpy as np

    monkeypatch.setattr(np, "save", _disk_full)  # the embedding cache's first block
    code = main(evaluate(w, "--max-questions", "2"))
    _check_one_error_line(code, capsys.readouterr().err, "the disk is full")


def test_a_full_disk_while_importing_is_one_error_line(w, monkeypatch, capsys):
    from polyqa.corpus import writer

    monkeypatch.setattr(writer.ipc, "new_file", _disk_full)
    code = main(["import-parallel", str(w.squad), "--output", str(w.root / "full-import")])
    _check_one_error_line(code, capsys.readouterr().err, "the disk is full")


def test_a_full_disk_while_building_tiny_models_is_one_error_line(w, monkeypatch, capsys):
    from polyqa.translate import convert

    monkeypatch.setattr(convert, "convert_hf_model", _disk_full)
    code = main(["tiny-models", "--output", str(w.root / "full-tiny")])
    _check_one_error_line(code, capsys.readouterr().err, "the disk is full")


def test_a_full_disk_while_running_a_study_is_one_error_line(w, monkeypatch, capsys):
    from polyqa.study import job as study
    from polyqa.corpus.job import build_corpus

    corpus = w.root / "imported"  # a study reads the corpus manifest: a corpus as polyqa writes it
    build_corpus({"name": "imported", "sources": [{"kind": "parallel", "path": str(w.squad), "name": "squad"}],
                  "languages": ["de"], "model": None, "card_dir": None}, corpus)
    monkeypatch.setattr(study, "write_results", _disk_full)
    code = main(["study", "--config", study_yaml(w, "full", corpus=str(corpus))])
    _check_one_error_line(code, capsys.readouterr().err, "the disk is full")


def test_a_locked_output_is_one_error_line_naming_the_holder(w, capsys):
    from polyqa.locking import OutputLock

    config = study_yaml(w, "locked")
    with OutputLock(w.root / "study" / "locked" / "results", "polyqa study (other run)"):
        code = main(["study", "--config", config])
    _check_one_error_line(code, capsys.readouterr().err, "being written by polyqa study (other run) on host")


# --------------------------------------------------------------------------- --debug and the real executable


def test_debug_shows_the_traceback(w, monkeypatch):
    from polyqa.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_size must be >= 2"):
        main(["--debug", "train", "--config", train_yaml(w, "debug", batch_size=0)])
    monkeypatch.setenv("POLYQA_DEBUG", "1")
    with pytest.raises(ConfigError, match="config file not found"):
        main(["train", "--config", str(w.missing)])


def _run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(POLYQA), *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("argv, needle", [
    (lambda w: ["validate", str(w.empty)], "empty"),
    (lambda w: ["train", "--config", str(w.latin1)], "UTF-8"),
    (lambda w: ["evaluate", "--model", str(w.not_model), "--benchmark", "xquad-r", "--output",
                str(w.root / "x.json")], "not-a-model"),
    (lambda w: ["languages", "klingon"], "klingon"),
    (lambda w: ["study", "--config", str(w.missing)], "missing"),
], ids=["validate", "train", "evaluate", "languages", "study"])
def test_the_installed_command_fails_with_one_error_line(w, argv, needle):
    assert POLYQA.is_file(), f"{POLYQA} not installed"
    done = _run(*argv(w))
    _check_one_error_line(done.returncode, done.stderr, needle)


def test_the_installed_command_with_debug_shows_the_traceback(w):
    done = _run("--debug", "train", "--config", str(w.latin1))
    assert done.returncode != 0 and "Traceback" in done.stderr
    done = _run("train", "--config", str(w.latin1), env={"POLYQA_DEBUG": "1"})
    assert done.returncode != 0 and "Traceback" in done.stderr
