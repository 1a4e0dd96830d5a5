"""The benchmarks' shared method (benchmarks/method.py), the table of run_all.py, and the
output-layer measurement of translate.py: what their figures mean must hold."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # the scripts import method.py as a sibling
    if name in ("method",):  # imported by the others under this name: one module, not two
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(f"polyqa_bench_{name}", BENCHMARKS / f"{name}.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def method():
    return load("method")


def test_sides_alternate_as_a_palindrome_and_every_round_is_checked(method):
    calls, checked = [], []

    def side(name):
        def run():
            calls.append(name)
            return name
        return run

    seconds = method.alternate("t", [("a", side("a")), ("b", side("b")), ("c", side("c"))], rounds=2,
                               warmup=True, check=checked.append)
    rounds = max(2, method.MIN_ROUNDS)
    expected = ["a", "b", "c"] + [x for r in range(rounds) for x in (["a", "b", "c"] if r % 2 == 0 else ["c", "b", "a"])]
    assert calls == expected  # warm-up once each, then A B C / C B A ...
    assert all(len(v) == rounds for v in seconds.values())
    assert checked == [{"a": "a", "b": "b", "c": "c"}] * rounds


def test_a_failing_check_stops_the_measurement(method):
    def disagree(out):
        raise SystemExit("output lengths differ")

    with pytest.raises(SystemExit, match="differ"):
        method.alternate("t", [("a", lambda: 1), ("b", lambda: 2)], warmup=False, check=disagree)


def test_ratio_figures_are_per_round_reference_over_subject_summarised_by_median(method):
    seconds = {"ref": [10.0, 12.0, 9.0, 11.0, 30.0], "sub": [2.0, 3.0, 3.0, 2.0, 3.0]}
    figure = method.ratio_figure("f", seconds, "ref", "sub", target=4.0)
    assert figure.values == [5.0, 4.0, 3.0, 5.5, 10.0]
    summary = figure.summary()
    assert (summary["median"], summary["min"], summary["max"]) == (5.0, 3.0, 10.0)
    assert summary["met"] is True and summary["seconds"] == seconds
    assert method.ratio_figure("f", seconds, "ref", "sub", target=6.0).met is False
    assert method.value_figure("v", [0.4, 0.5], unit="share").met is None  # no target: shown, never judged


@pytest.mark.parametrize("load1, quiet", [(0.3, True), (1.7, False)])
def test_a_run_records_the_load_and_warns_when_the_machine_is_not_quiet(method, monkeypatch, capsys, load1, quiet):
    monkeypatch.setattr(method, "machine_state", lambda: {"load1": load1, "load5": 1.0, "load15": 1.0, "cpus": 2,
                                                          "time": "t"})
    run = method.Run("demo", {"quick": True})
    run.add(method.value_figure("v", [1.0, 2.0, 3.0], unit="s"))
    summary = run.finish()
    out, err = capsys.readouterr()
    last = json.loads(out.strip().splitlines()[-1])
    assert last == json.loads(json.dumps(summary))
    assert last["quiet"] is quiet and last["machine"]["start"]["load1"] == load1
    assert last["settings"] == {"quick": True} and last["figures"]["v"]["median"] == 2.0
    assert ("not quiet" in out + err) is not quiet


def test_the_table_judges_targets_and_shows_figures_without_one(method):
    run_all = load("run_all")
    summary = {"quiet": True, "machine": {"others_cpu_share_max": 0.01}, "figures": {
        "speed": {"median": 4.3, "min": 4.1, "max": 4.6, "target": 5.0, "higher_is_better": True, "unit": "x"},
        "share": {"median": 0.43, "min": 0.36, "max": 0.44, "target": None, "unit": "share"},
        "rss": {"median": 1.0, "min": 1.0, "max": 1.0, "target": 1.2, "higher_is_better": False, "unit": "x"}}}
    rows = {row[0]: row for row in run_all.rows_of("translate", summary)}
    assert rows["translate:speed"][1:5] == [">= 5.0", "4.300", "4.100-4.600", "NO"]
    assert rows["translate:share"][1:5] == ["-", "0.430 share", "0.360-0.440", "-"]
    assert rows["translate:rss"][4] == "yes" and rows["translate:rss"][5] == "yes"
    assert run_all.last_json("log line\n{\"a\": 1}\n") == {"a": 1}


def test_the_small_vocabulary_copy_restricts_outputs_and_leaves_the_model_alone(tiny_model, tmp_path):
    """translate.py's output-layer figure compares the model with and without a vocabulary map:
    with it, every output token is among the first N entries; the model folder is not touched."""
    import ctranslate2

    translate = load("translate")
    before = sorted(p.name for p in tiny_model.ct2_dir.iterdir())
    small_dir, size = translate.small_vocabulary_copy(tiny_model.ct2_dir, tmp_path, 40)
    vocabulary = json.loads((tiny_model.ct2_dir / "shared_vocabulary.json").read_text("utf-8"))
    assert size == len(vocabulary) > 40
    assert sorted(p.name for p in tiny_model.ct2_dir.iterdir()) == before

    translator = ctranslate2.Translator(str(small_dir))
    source = [["eng_Latn", *vocabulary[100:112], "</s>"]]
    options = dict(target_prefix=[["deu_Latn"]], beam_size=1, max_decoding_length=12, min_decoding_length=12)
    allowed = set(vocabulary[:40]) | {"deu_Latn", "<unk>", "<s>", "</s>"}
    cut = translator.translate_batch(source, use_vmap=True, **options)[0].hypotheses[0]
    full = translator.translate_batch(source, use_vmap=False, **options)[0].hypotheses[0]
    assert len(cut) == len(full) == 12
    assert set(cut) <= allowed
    assert not set(full) <= allowed  # the random model does reach beyond them: the cut is real
