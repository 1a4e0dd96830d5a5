"""Resolve a model argument to a CTranslate2 directory, converting Hugging Face models once.

A model argument is one of:
- a CTranslate2 model directory (has ``model.bin``): used in place;
- a Hugging Face model folder (has ``config.json``): converted into the models cache;
- a Hugging Face hub id (``facebook/nllb-200-distilled-600M``): downloaded (only the
  files conversion needs), then converted into the models cache.

The cache folder name is keyed by model, revision and quantization. Conversion
writes to a temporary folder next to the final one and renames it, so several
processes converting the same model at once end with one complete copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from polyqa import paths

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")

# Files next to the weights that the engine needs to tokenise exactly like the HF model.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "generation_config.json",
)
# What a hub download needs for conversion (weights in either format, config, tokenizer).
HUB_PATTERNS = ["config.json", "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", *TOKENIZER_FILES]

META_FILE = "polyqa_model.json"
TINY_MODEL = "tiny"  # model name of the random tiny NLLB model (demos and tests)


class ModelNotFoundError(FileNotFoundError):
    """A model argument that is neither a model folder nor a reachable hub id."""


@dataclass(frozen=True)
class ResolvedModel:
    model: str  # the argument as given (hub id or absolute path)
    revision: str | None  # hub commit, or a content hash for local folders
    quantization: str | None  # None for a CTranslate2 folder used as is
    ct2_dir: Path
    fingerprint: str  # identifies the converted weights (used in translation cache keys)

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "revision": self.revision,
            "quantization": self.quantization,
            "ct2_dir": str(self.ct2_dir),
            "fingerprint": self.fingerprint,
        }


def default_models_dir() -> Path:
    return paths.models_dir()


def is_ct2_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def is_hf_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and not (path / "model.bin").is_file()


def content_fingerprint(folder: Path, names: list[str] | None = None, *, samples: int = 16, chunk: int = 1 << 16) -> str:
    """A sha256 over file names, sizes and evenly spaced chunks of each file.

    Reading all of a 2.4 GB checkpoint on every start would cost seconds; sampled
    chunks plus exact sizes tell different weights apart in practice and do not
    depend on mtimes, so a copied folder keeps its fingerprint.
    """
    digest = hashlib.sha256()
    files = sorted(names) if names is not None else sorted(p.name for p in folder.iterdir() if p.is_file())
    for name in files:
        path = folder / name
        if not path.is_file() or name == META_FILE:
            continue
        size = path.stat().st_size
        digest.update(f"{name}\0{size}\0".encode())
        with open(path, "rb") as handle:
            if size <= samples * chunk:
                digest.update(handle.read())
                continue
            step = (size - chunk) // (samples - 1)
            for i in range(samples):
                handle.seek(i * step)
                digest.update(handle.read(chunk))
    return digest.hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-80:] or "model"


def _read_meta(ct2_dir: Path) -> dict | None:
    try:
        return json.loads((ct2_dir / META_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _download(model_id: str, revision: str | None) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    patterns = list(HUB_PATTERNS)
    try:  # NLLB repos may hold both weight formats: fetch one (2.4 GB each for 600M)
        from huggingface_hub import list_repo_files

        if any(name.endswith(".safetensors") for name in list_repo_files(model_id, revision=revision)):
            patterns.remove("pytorch_model*.bin")
    except Exception:  # offline or unknown repo: snapshot_download below says what is wrong
        pass
    try:
        local = snapshot_download(model_id, revision=revision, allow_patterns=patterns)
    except HFValidationError as exc:
        raise ModelNotFoundError(f"{model_id!r} is not a model folder and not a valid hub id: {exc}") from exc
    except Exception as exc:  # offline, unknown repo, gated: say what was tried
        raise ModelNotFoundError(
            f"could not fetch Hugging Face model {model_id!r} (revision {revision or 'main'}): {exc}. "
            "Pass a local Hugging Face folder or a CTranslate2 folder instead."
        ) from exc
    local_path = Path(local)
    # snapshot folders are named after the commit hash: the exact revision.
    return local_path, local_path.name


# transformers' model loading patches global state (meta-device init), so two
# conversions in threads of one process corrupt each other: one at a time.
_CONVERSION_LOCK = threading.Lock()


@contextmanager
def _conversion_lock(output_dir: Path):
    """Process-wide lock plus an advisory file lock, so concurrent processes wait
    for the first conversion instead of repeating it (the rename keeps it safe
    even where file locks do not work, e.g. some network filesystems)."""
    with _CONVERSION_LOCK:
        lock_path = output_dir.parent / f".{output_dir.name}.lock"
        with open(lock_path, "a") as handle:
            try:
                import fcntl

                fcntl.flock(handle, fcntl.LOCK_EX)
            except (ImportError, OSError):  # no fcntl (Windows) or unsupported filesystem
                pass
            yield


def convert_hf_model(hf_dir: Path, output_dir: Path, quantization: str) -> None:
    """Convert a local HF folder into ``output_dir`` (temp folder + rename; safe if raced)."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with _conversion_lock(output_dir):
        if is_ct2_dir(output_dir):
            logger.info("%s was converted by another process meanwhile", output_dir)
            return
        _convert(hf_dir, output_dir, quantization)


def _convert(hf_dir: Path, output_dir: Path, quantization: str) -> None:
    import ctranslate2

    copy_files = [name for name in TOKENIZER_FILES if (hf_dir / name).is_file()]
    if "tokenizer.json" not in copy_files:
        raise FileNotFoundError(
            f"{hf_dir}: no tokenizer.json; the engine tokenises with the model's fast tokenizer. "
            "Save the tokenizer next to the model (tokenizer.save_pretrained)."
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        converter = ctranslate2.converters.TransformersConverter(str(hf_dir), copy_files=copy_files)
        logger.info("converting %s to CTranslate2 (%s) in %s", hf_dir, quantization, output_dir)
        converter.convert(str(tmp / "model"), quantization=quantization, force=True)
        final_tmp = tmp / "model"
        meta = {
            "source": str(hf_dir),
            "quantization": quantization,
            "ctranslate2": ctranslate2.__version__,
            "fingerprint": content_fingerprint(final_tmp) + f"-{quantization}",
            "max_positions": _hf_max_positions(hf_dir),
        }
        (final_tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        try:
            os.rename(final_tmp, output_dir)
        except OSError:
            if not is_ct2_dir(output_dir):  # not a lost race: a real failure
                raise
            logger.info("%s was converted by another process meanwhile", output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _hf_max_positions(hf_dir: Path) -> int | None:
    try:
        config = json.loads((Path(hf_dir) / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings")
    return int(value) if isinstance(value, int) and value > 0 else None


def model_max_positions(ct2_dir: str | os.PathLike) -> int | None:
    """Positions the converted model has (inputs and outputs longer than this crash CTranslate2).

    Recorded at conversion; for folders converted before that, read from the source model's
    config when it is still there. None when unknown.
    """
    meta = _read_meta(Path(ct2_dir)) or {}
    if meta.get("max_positions"):
        return int(meta["max_positions"])
    if meta.get("source"):
        return _hf_max_positions(Path(meta["source"]))
    return None


def resolve_model(
    model: str | os.PathLike,
    *,
    quantization: str = "int8",
    revision: str | None = None,
    models_dir: str | os.PathLike | None = None,
) -> ResolvedModel:
    """Find or build the CTranslate2 folder for ``model`` (see module docstring)."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    root = Path(models_dir).expanduser() if models_dir else default_models_dir()
    path = Path(model).expanduser()
    if str(model) == TINY_MODEL:  # the random tiny NLLB model, built locally on first use
        from polyqa.translate.tiny import build_tiny_model

        path = build_tiny_model(root / "tiny-nllb").ct2_dir
    elif path.is_dir() and not is_ct2_dir(path) and is_ct2_dir(path / "ct2"):
        path = path / "ct2"  # a folder made by `polyqa tiny-models --output DIR`
    if path.exists():
        path = path.resolve()
        if is_ct2_dir(path):
            meta = _read_meta(path)
            fingerprint = meta["fingerprint"] if meta else content_fingerprint(path)
            return ResolvedModel(str(path), None, meta.get("quantization") if meta else None, path, fingerprint)
        if not is_hf_dir(path):
            raise ModelNotFoundError(
                f"{path}: neither a CTranslate2 model folder (model.bin + config.json) "
                "nor a Hugging Face model folder (config.json)"
            )
        hf_dir, model_name, slug = path, str(path), path.name
        revision = "local-" + content_fingerprint(path)[:16]
    elif os.path.isabs(str(model)) or str(model).startswith((".", "~")):
        raise ModelNotFoundError(f"model folder not found: {model}")
    else:
        model_name = slug = str(model)
        hf_dir, revision = _download(model_name, revision)

    ct2_dir = root / f"{_slug(slug)}--{_slug(revision)}--{quantization}"
    if not is_ct2_dir(ct2_dir):
        convert_hf_model(hf_dir, ct2_dir, quantization)
    meta = _read_meta(ct2_dir)
    fingerprint = meta["fingerprint"] if meta else content_fingerprint(ct2_dir)
    return ResolvedModel(model_name, revision, quantization, ct2_dir, fingerprint)
