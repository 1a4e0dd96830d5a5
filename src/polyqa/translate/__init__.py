"""Machine translation with NLLB-200 through CTranslate2: engine, conversion, cache, tiny test model.

``from polyqa.translate import TranslationEngine, DecodingSettings, TranslationCache``
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "TranslationEngine": "polyqa.translate.engine",
    "DecodingSettings": "polyqa.translate.engine",
    "TranslationStats": "polyqa.translate.engine",
    "TranslationCache": "polyqa.translate.cache",
    "resolve_model": "polyqa.translate.convert",
    "build_tiny_model": "polyqa.translate.tiny",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # imported on first use: `import polyqa.translate` stays light
    if name not in _EXPORTS:
        raise AttributeError(f"module 'polyqa.translate' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
