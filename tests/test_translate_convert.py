"""Model resolution: HF folders are converted once into a cache keyed by model, revision, quantization."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from polyqa.translate.convert import ModelNotFoundError, _convert, convert_hf_model, is_ct2_dir, resolve_model
from polyqa.translate.engine import DecodingSettings, TranslationEngine


def test_quantization_keys_the_converted_dir(tiny_model, tmp_path):
    models = tmp_path / "models"
    int8 = resolve_model(tiny_model.hf_dir, quantization="int8", models_dir=models)
    f32 = resolve_model(tiny_model.hf_dir, quantization="float32", models_dir=models)
    assert int8.ct2_dir != f32.ct2_dir
    assert int8.ct2_dir.name.endswith("--int8") and f32.ct2_dir.name.endswith("--float32")
    assert int8.ct2_dir.parent == models and is_ct2_dir(int8.ct2_dir)
    assert int8.fingerprint != f32.fingerprint
    assert (int8.ct2_dir / "tokenizer.json").is_file()
    assert int8.revision == f32.revision and int8.revision.startswith("local-")

    # a second resolve reuses the conversion
    stamp = (int8.ct2_dir / "model.bin").stat().st_mtime_ns
    again = resolve_model(tiny_model.hf_dir, quantization="int8", models_dir=models)
    assert again == int8 and (again.ct2_dir / "model.bin").stat().st_mtime_ns == stamp
    converted = sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock"))
    assert converted == sorted([int8.ct2_dir.name, f32.ct2_dir.name])

    # a CT2 folder is used in place, with the fingerprint recorded at conversion
    direct = resolve_model(int8.ct2_dir)
    assert direct.ct2_dir == int8.ct2_dir and direct.fingerprint == int8.fingerprint

    with pytest.raises(ValueError, match="unknown quantization"):
        resolve_model(tiny_model.hf_dir, quantization="int4", models_dir=models)


def test_engine_converts_hf_folder_with_each_quantization(tiny_model, tmp_path):
    lines = ["The river flows through the city.", "Who wrote the novel?"]
    outputs = {}
    for quantization in ("int8", "bfloat16", "float32"):
        with TranslationEngine(
            tiny_model.hf_dir,
            quantization=quantization,
            models_dir=tmp_path / "models",
            decoding=DecodingSettings(beam_size=1, max_length_extra=6),
        ) as engine:
            assert engine.model_info["quantization"] == quantization
            assert engine.ct2_dir.name.endswith(f"--{quantization}")
            outputs[quantization] = engine.translate(lines, "en", "de")
            assert engine.stats.translated == 2 and engine.stats.target_tokens > 0
    # the float32 conversion is the tiny model's own float32 CT2 copy, token for token
    with TranslationEngine(tiny_model.ct2_dir, decoding=DecodingSettings(beam_size=1, max_length_extra=6)) as ref:
        assert ref.translate(lines, "en", "de") == outputs["float32"]


def test_fingerprint_follows_content_not_location(tiny_model, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model.hf_dir, copy)
    a = resolve_model(tiny_model.hf_dir, quantization="int8", models_dir=tmp_path / "m")
    b = resolve_model(copy, quantization="int8", models_dir=tmp_path / "m")
    assert a.revision == b.revision and a.fingerprint == b.fingerprint


def test_concurrent_conversions_leave_one_complete_copy(tiny_model, tmp_path):
    barrier = threading.Barrier(3)

    def convert(_):
        barrier.wait()
        return resolve_model(tiny_model.hf_dir, quantization="int8", models_dir=tmp_path).ct2_dir

    with ThreadPoolExecutor(3) as pool:
        dirs = set(pool.map(convert, range(3)))
    assert len(dirs) == 1
    (ct2_dir,) = dirs
    assert is_ct2_dir(ct2_dir)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != ct2_dir.name and not p.name.endswith(".lock")]
    assert leftovers == []  # no temp folders


def test_losing_the_rename_race_keeps_the_winner(tiny_model, tmp_path):
    # What a process that converted in parallel (without the file lock) meets at rename time.
    target = tmp_path / "model--int8"
    _convert(tiny_model.hf_dir, target, "int8")
    winner = (target / "model.bin").stat().st_mtime_ns
    _convert(tiny_model.hf_dir, target, "int8")  # rename onto a complete copy fails: not an error
    assert (target / "model.bin").stat().st_mtime_ns == winner
    assert [p.name for p in tmp_path.iterdir()] == ["model--int8"]
    convert_hf_model(tiny_model.hf_dir, target, "int8")  # with the lock: sees the copy, converts nothing
    assert (target / "model.bin").stat().st_mtime_ns == winner


def test_bad_model_arguments(tmp_path):
    with pytest.raises(ModelNotFoundError, match="neither a CTranslate2"):
        resolve_model(tmp_path)
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_model(tmp_path / "missing")
    with pytest.raises(ModelNotFoundError, match="could not fetch"):  # HF_HUB_OFFLINE=1 in tests
        resolve_model("polyqa-test/no-such-model", models_dir=tmp_path)
