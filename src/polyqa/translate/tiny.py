"""A tiny random NLLB-style model for tests and demos, built offline in a few seconds.

The model has NLLB's structure where it matters to the pipeline (an M2M100
encoder-decoder, an NLLB tokenizer with the 202 language codes in fairseq order,
the language code as first target token) and nothing else: a small sentencepiece
vocabulary trained on the text shipped in :mod:`polyqa.translate.sample_text` and
random weights. Its translations are babble, but deterministic babble.

Transformers 5 ignores ``NllbTokenizer(vocab_file=...)`` (every word becomes
``<unk>``), so the tokenizer is built from an explicit vocabulary and merges
extracted from the sentencepiece model.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from polyqa.languages import ENGLISH, NLLB_CODES

BUILD_FILE = "tiny_model.json"
BUILD_VERSION = 1


@dataclass(frozen=True)
class TinyModel:
    hf_dir: Path
    ct2_dir: Path


def train_sentencepiece(lines: list[str], vocab_size: int, seed: int) -> bytes:
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=1.0,  # keep every character of the sample: few <unk>s in tests
        hard_vocab_limit=False,
        # The HF tokenizer is built without spm's normaliser: learn pieces of the raw text.
        normalization_rule_name="identity",
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def build_tokenizer(spm_model: bytes, *, vocab_size: int | None = None):
    """An NllbTokenizer with vocabulary ``<s> <pad> </s> <unk>``, the pieces, the language codes, ``<mask>``.

    ``vocab_size`` pads the pieces with unreachable filler pieces (never produced
    by tokenisation, but decodable) so the vocabulary has NLLB's real size
    (256,206) for benchmarks, where the output projection dominates decoding.
    """
    import sentencepiece as spm
    from transformers import NllbTokenizer
    from transformers.tokenization_utils_base import generate_merges

    processor = spm.SentencePieceProcessor(model_proto=spm_model)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    scores = {p: processor.get_score(i) for i, p in enumerate(pieces)}
    vocab: dict[str, int] = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece in pieces:
        if piece not in vocab:  # spm's own <unk> is already there
            vocab[piece] = len(vocab)
    piece_vocab = {p: i for p, i in vocab.items() if i >= 4}
    # BPE scores are minus the merge rank: order merges by score, highest first.
    merges = generate_merges(piece_vocab, vocab_scores={p: scores[p] for p in piece_vocab})
    if vocab_size is not None:
        fillers = vocab_size - len(NLLB_CODES) - 1 - len(vocab)
        if fillers < 0:
            raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(vocab) + len(NLLB_CODES) + 1} needed")
        target, i = len(vocab) + fillers, 0
        while len(vocab) < target:
            vocab.setdefault(f"\u2581w{i}", len(vocab))
            i += 1
    for code in NLLB_CODES:
        vocab[code] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return NllbTokenizer(vocab=vocab, merges=merges, src_lang=ENGLISH, tgt_lang="deu_Latn")


# Layer sizes of the tiny model; NLLB_600M below is NLLB-200-distilled-600M's.
TINY_ARCHITECTURE = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                         decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                         max_position_embeddings=256)
NLLB_600M = dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                 decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096,
                 max_position_embeddings=1024)
NLLB_VOCAB_SIZE = 256206


def build_hf_model(vocab_size: int, seed: int, *, init_std: float = 0.5, architecture: dict | None = None):
    """A random M2M100 with NLLB's layout: tiny by default (builds and runs in well under a second)."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    config = M2M100Config(
        vocab_size=vocab_size,
        **(architecture or TINY_ARCHITECTURE),
        scale_embedding=True,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation_function="relu",
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        # A larger init than the default 0.02 spreads the logits, so greedy
        # decoding has no near-ties that float noise could flip between engines.
        init_std=init_std,
        tie_word_embeddings=True,
        tokenizer_class="NllbTokenizer",
    )
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config)
    model.eval()
    model.generation_config.max_length = 64
    return model


def _is_complete(output: Path, seed: int, quantization: str) -> bool:
    try:
        info = json.loads((output / BUILD_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return info == {"version": BUILD_VERSION, "seed": seed, "quantization": quantization}


def build_tiny_model(output_dir: str | os.PathLike, *, seed: int = 0, quantization: str = "float32") -> TinyModel:
    """Build (or reuse) ``output_dir/hf`` and ``output_dir/ct2``.

    Idempotent: a complete build with the same seed and quantization is reused.
    The build happens in a temporary sibling folder renamed into place, so an
    interrupted or concurrent build never leaves a half-written model behind.
    """
    from polyqa.translate.convert import convert_hf_model
    from polyqa.translate.sample_text import sample_lines

    output = Path(output_dir).expanduser().resolve()
    result = TinyModel(hf_dir=output / "hf", ct2_dir=output / "ct2")
    if _is_complete(output, seed, quantization):
        return result
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        tokenizer = build_tokenizer(train_sentencepiece(sample_lines(), vocab_size=600, seed=seed))
        model = build_hf_model(len(tokenizer), seed)
        hf_dir = tmp / "hf"
        model.save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
        convert_hf_model(hf_dir, tmp / "ct2", quantization)
        (tmp / BUILD_FILE).write_text(
            json.dumps({"version": BUILD_VERSION, "seed": seed, "quantization": quantization})
        )
        if output.exists():  # an incomplete or different build of ours: replace it, never anything else
            if any(output.iterdir()) and not (output / BUILD_FILE).exists() and not (output / "hf").exists():
                raise FileExistsError(f"{output} is not empty and holds no tiny model built by polyqa; "
                                      "not replacing it: choose another folder")
            shutil.rmtree(output)
        try:
            os.rename(tmp, output)
        except OSError:
            if not _is_complete(output, seed, quantization):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result
