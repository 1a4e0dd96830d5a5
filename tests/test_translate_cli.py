"""`polyqa translate` on the tiny model: input order, several targets, cache, clear errors."""

from __future__ import annotations

import json

from polyqa.cli import main


def test_translate_file_to_two_targets(tiny_model, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("The river flows.\n\nWho wrote the novel?\nThe river flows.\n", encoding="utf-8")
    args = ["translate", "--model", str(tiny_model.ct2_dir), "--source", "en", "--target", "de,zh",
            "--input", str(source), "--cache", str(tmp_path / "c.sqlite"), "--beam-size", "1", "--stats"]
    assert main(args) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["deu_Latn"] * 4 + ["zho_Hans"] * 4
    german = [line.split("\t", 1)[1] for line in lines[:4]]
    assert german[1] == "" and german[0] == german[3] != german[2]
    stats = json.loads(captured.err.strip().splitlines()[-1])["stats"]
    assert stats["translated"] == 4 and stats["segments_requested"] == 8

    assert main(args) == 0  # rerun: all from the cache, same output
    captured = capsys.readouterr()
    assert captured.out.splitlines() == lines
    assert json.loads(captured.err.strip().splitlines()[-1])["stats"]["cache_hits"] == 4


def test_translate_passages_from_stdin(tiny_model, tmp_path, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Dr. Smith came. He left.\n"))
    assert main(["translate", "--model", str(tiny_model.ct2_dir), "--source", "en", "--target", "fr",
                 "--passages", "--no-cache", "--beam-size", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("fra_Latn\t")


def test_translate_reports_bad_arguments(tiny_model, tmp_path, capsys):
    assert main(["translate", "--model", str(tmp_path / "nope"), "--source", "en", "--target", "de",
                 "--no-cache", "--input", "/dev/null"]) == 2
    assert "model folder not found" in capsys.readouterr().err
    assert main(["translate", "--model", str(tiny_model.ct2_dir), "--source", "en", "--target", "xx-bad",
                 "--no-cache", "--input", "/dev/null"]) == 2
    assert "error:" in capsys.readouterr().err


def test_translate_a_sentence_longer_than_the_model_positions(tiny_model, tmp_path, capsys):
    from test_translate_engine import LONG_SENTENCE

    source = tmp_path / "long.txt"
    source.write_text(LONG_SENTENCE + "\n", encoding="utf-8")
    for extra in ([], ["--passages"]):
        assert main(["translate", "--model", str(tiny_model.ct2_dir), "--source", "en", "--target", "de",
                     "--input", str(source), "--no-cache", "--beam-size", "1", *extra]) == 0
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        out = captured.out.splitlines()
        assert len(out) == 1 and out[0].startswith("deu_Latn\t") and len(out[0]) > 20


def test_one_name_for_each_model(tiny_model, tmp_path, capsys, monkeypatch):
    """`--model tiny` works as in a build config; a `polyqa tiny-models` folder works as well as its ct2/."""
    import shutil

    from polyqa.translate import TranslationEngine  # the import the README shows

    monkeypatch.setenv("POLYQA_HOME", str(tmp_path / "home"))
    line = tmp_path / "in.txt"
    line.write_text("The river flows.\n", encoding="utf-8")
    common = ["--source", "en", "--target", "de", "--input", str(line), "--no-cache", "--beam-size", "1"]
    assert main(["translate", "--model", "tiny", *common]) == 0
    via_alias = capsys.readouterr().out
    assert via_alias.startswith("deu_Latn\t") and (tmp_path / "home" / "models" / "tiny-nllb" / "ct2").is_dir()
    assert main(["tiny-models", "--output", str(tmp_path / "tiny")]) == 0
    capsys.readouterr()
    assert main(["translate", "--model", str(tmp_path / "tiny"), *common]) == 0
    assert capsys.readouterr().out == via_alias  # same seed, same model, same output
    with TranslationEngine(str(tmp_path / "tiny")) as engine:
        assert engine.ct2_dir == (tmp_path / "tiny" / "ct2").resolve()
    # a folder of the user's is never replaced by a tiny-model build
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["tiny-models", "--output", str(mine)]) == 2
    assert (mine / "notes.txt").read_text() == "keep me"
    assert "not replacing" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "home")
