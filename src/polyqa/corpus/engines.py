"""Translation engines of a build: one per process and model settings, and what the manifest says of them.

A Dask worker builds many units; it loads the model once and keeps it for the
units after (and for later builds with the same settings).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from typing import Any

from polyqa.corpus.config import BuildConfig
from polyqa.languages import ENGLISH
from polyqa.translate.engine import TranslationStats

# Licenses of known MT model families (the corpus inherits them).
MODEL_LICENSES = {"facebook/nllb-200": "CC-BY-NC-4.0", "tiny": "Apache-2.0 (random weights built by polyqa)"}

_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()


def model_license(model: str | None) -> str | None:
    if model is None:
        return None
    for prefix, license in MODEL_LICENSES.items():
        if str(model).startswith(prefix):
            return license
    return "see the model card"


def get_engine(config: BuildConfig):
    """This process's engine for the config's model settings (created on first use)."""
    if config.model is None:
        raise ValueError("this corpus needs machine translation but the config has model: null")
    key = json.dumps([config.model, config.revision, config.quantization, config.decoding, config.engine,
                      config.cache_path, config.models_path, config.tiny_model_path], sort_keys=True, default=str)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = _make_engine(config)
        return _ENGINES[key]


def _make_engine(config: BuildConfig):
    from polyqa.translate.engine import DecodingSettings, TranslationEngine

    model: Any = config.model
    if model == "tiny":
        from polyqa.translate.tiny import build_tiny_model

        model = build_tiny_model(config.tiny_model_path).ct2_dir
    cache = None
    if config.cache_path is not None:
        from polyqa.translate.cache import TranslationCache

        config.cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache = TranslationCache(config.cache_path)
    return TranslationEngine(
        str(model),
        quantization=config.quantization,
        revision=config.revision,
        models_dir=config.models_path,
        cache=cache,
        decoding=DecodingSettings(**config.decoding),
        **config.engine,
    )


def close_engines() -> None:
    """Release this process's engines (models and cache connections)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.close()
        _ENGINES.clear()


def model_description(config: BuildConfig, engine: Any | None) -> dict[str, Any]:
    """The manifest's ``mt_model``: the configured model, and what the loaded engine reports of itself."""
    info: dict[str, Any] = {"model": config.model, "revision": config.revision,
                            "quantization": config.quantization, "license": model_license(config.model)}
    if engine is not None:
        info["model_info"] = dict(getattr(engine, "model_info", {}) or {})
        ran = info["model_info"].get("quantization")
        if ran and ran != config.quantization:
            # A ready CTranslate2 folder runs as it was converted, whatever the config asked:
            # the manifest says what ran, and keeps the request beside it.
            info["quantization"], info["requested_quantization"] = ran, config.quantization
        info["model_fingerprint"] = getattr(engine, "model_fingerprint", None)
        decoding = getattr(engine, "decoding", None)
        info["decoding"] = asdict(decoding) if decoding is not None else dict(config.decoding)
    else:
        info["decoding"] = dict(config.decoding)
    return info


def translate_segments(engine: Any, segments: list[str], lang: str) -> tuple[dict[str, str], TranslationStats]:
    """Translate English segments into ``lang``: {English: translation} and the engine work of this call."""
    translations, stats = engine.translate_counted(segments, ENGLISH, [lang])
    for name in ("seconds", "model_seconds", "cache_seconds"):
        setattr(stats, name, round(getattr(stats, name), 3))
    return dict(zip(segments, translations[lang])), stats
