"""The tiny NLLB builder: tokenizer faithful to NLLB's layout, HF and CTranslate2 copies agree."""

from __future__ import annotations

import json

import ctranslate2
import pytest
import torch
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from polyqa.cli import main
from polyqa.languages import NLLB_CODES
from polyqa.translate.sample_text import sample_lines
from polyqa.translate.tiny import BUILD_FILE, build_tiny_model


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model.ct2_dir)


def test_build_layout(tiny_model):
    assert (tiny_model.hf_dir / "config.json").is_file()
    assert (tiny_model.hf_dir / "tokenizer.json").is_file()
    assert (tiny_model.ct2_dir / "model.bin").is_file()
    # tokenizer files are copied next to the converted model, so the engine needs only ct2_dir
    assert (tiny_model.ct2_dir / "tokenizer.json").is_file()
    vocab = json.loads((tiny_model.ct2_dir / "shared_vocabulary.json").read_text())
    assert vocab[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert vocab[-1] == "<mask>"
    assert vocab[-1 - len(NLLB_CODES) : -1] == list(NLLB_CODES)


def test_tokenizer_uses_the_sentencepiece_vocabulary(tokenizer):
    text = "Dr. Smith moved to the U.S. in 1998. Die Normannen waren das Volk."
    tokenizer.src_lang = "eng_Latn"
    ids = tokenizer(text).input_ids
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "eng_Latn" and tokens[-1] == "</s>"
    assert "<unk>" not in tokens  # the transformers-5 vocab_file pitfall makes every word <unk>
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.convert_tokens_to_ids("zul_Latn") == len(tokenizer) - 2


def test_every_sample_line_round_trips(tokenizer):
    for line in sample_lines():
        ids = tokenizer(line, add_special_tokens=False).input_ids
        assert tokenizer.decode(ids) == line.strip()


def test_ct2_greedy_equals_hf_generate(tiny_model, tokenizer):
    """CTranslate2 and transformers run the same weights: same tokens, greedy, on every sample line."""
    texts = sample_lines()
    model = M2M100ForConditionalGeneration.from_pretrained(tiny_model.hf_dir).eval()
    translator = ctranslate2.Translator(str(tiny_model.ct2_dir), inter_threads=2, intra_threads=1)
    tokenizer.src_lang = "eng_Latn"
    new_tokens = 24
    distinct = set()
    for target in ("deu_Latn", "zho_Hans"):
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        with torch.no_grad():
            hf = model.generate(
                **batch,
                forced_bos_token_id=tokenizer.convert_tokens_to_ids(target),
                num_beams=1,
                do_sample=False,
                max_new_tokens=new_tokens,
            )
        sources = [tokenizer.convert_ids_to_tokens(tokenizer(t).input_ids) for t in texts]
        results = translator.translate_batch(
            sources, target_prefix=[[target]] * len(texts), beam_size=1, max_decoding_length=new_tokens
        )
        for row, result in zip(hf.tolist(), results):
            hf_ids = [i for i in row[1:] if i != tokenizer.pad_token_id]  # drop decoder start </s>
            if hf_ids[-1] == tokenizer.eos_token_id:
                hf_ids = hf_ids[:-1]
            ct2_ids = tokenizer.convert_tokens_to_ids(result.hypotheses[0])
            assert ct2_ids == hf_ids
            assert ct2_ids[0] == tokenizer.convert_tokens_to_ids(target)
            distinct.add(tuple(ct2_ids))
    # a degenerate model (same output for every input) would make the equality above meaningless
    assert len(distinct) > len(texts)


def test_build_is_idempotent(tiny_model):
    stamp = (tiny_model.ct2_dir / "model.bin").stat().st_mtime_ns
    again = build_tiny_model(tiny_model.hf_dir.parent, seed=0, quantization="float32")
    assert again == tiny_model
    assert (again.ct2_dir / "model.bin").stat().st_mtime_ns == stamp


def test_cli_builds_into_output(tmp_path, capsys):
    assert main(["tiny-models", "--output", str(tmp_path / "tiny"), "--seed", "1", "--quantization", "int8"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "tiny" / "ct2") in out
    info = json.loads((tmp_path / "tiny" / BUILD_FILE).read_text())
    assert info["seed"] == 1 and info["quantization"] == "int8"
    meta = json.loads((tmp_path / "tiny" / "ct2" / "polyqa_model.json").read_text())
    assert meta["quantization"] == "int8"
