"""A tiny random BERT sentence encoder, built offline from local text.

For tests and quick demos of training, evaluation and the study, where no
pretrained weights can be downloaded: a WordPiece vocabulary trained on the
given texts, a randomly initialised BERT, and mean pooling, saved so that
``SentenceTransformer(path)`` loads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_encoder(
    texts: Iterable[str],
    output_dir: str | os.PathLike,
    *,
    vocab_size: int = 3000,
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 2,
    max_seq_length: int = 128,
    seed: int = 0,
) -> Path:
    """Build the encoder into ``output_dir/st`` (Hugging Face parts in ``output_dir/hf``)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = Path(output_dir)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS))
    # transformers 5 ignores a vocab_file here; wrapping the trained tokenizer object keeps the vocabulary.
    tokenizer = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden_size,
                        max_position_embeddings=max(128, max_seq_length))
    BertModel(config).save_pretrained(root / "hf")
    tokenizer.save_pretrained(root / "hf")
    transformer = Transformer(str(root / "hf"), max_seq_length=max_seq_length)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")],
                                device="cpu")
    model.save(str(root / "st"))
    return root / "st"
