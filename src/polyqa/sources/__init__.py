"""English QA sources behind one interface; see :mod:`polyqa.sources.base` for the registry."""

from polyqa.sources.base import (
    Answer,
    Quarantined,
    RawRecord,
    SourceError,
    open_source,
    presets,
    register_source,
    resolve_spec,
    source_kinds,
)

__all__ = ["Answer", "Quarantined", "RawRecord", "SourceError", "open_source", "presets", "register_source",
           "resolve_spec", "source_kinds"]
