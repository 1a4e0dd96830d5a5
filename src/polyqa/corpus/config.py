"""The corpus build configuration: :class:`BuildConfig`, read from YAML, a mapping or the embedded default."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from polyqa import languages as L
from polyqa import paths
from polyqa.languages import ENGLISH
from polyqa.quality import QualityThresholds


@dataclass
class BuildConfig:
    name: str = "polyqa-default"
    sources: list[Any] = field(default_factory=lambda: ["polyqa_sample"])
    languages: list[str] = field(default_factory=lambda: ["deu_Latn", "fra_Latn", "spa_Latn"])
    shard_rows: int = 1000
    format: str = "arrow"
    compression: str = "zstd"
    model: str | None = "tiny"  # "tiny", a hub name, a local model folder, or None (imports only)
    revision: str | None = None
    quantization: str = "int8"
    # Kept unexpanded, so a config sent to another machine uses that machine's POLYQA_HOME.
    models_dir: str = "$POLYQA_HOME/models"
    tiny_model_dir: str | None = None  # where the tiny model is built (default models_dir/tiny-nllb)
    cache: str | None = "$POLYQA_HOME/translations.sqlite"
    decoding: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)  # device, inter_threads, intra_threads
    quality: dict[str, Any] = field(default_factory=dict)
    exclude_passages_from: list[str] = field(default_factory=list)
    dedup_questions: bool = True  # same question on the same passage under another id -> quarantine
    card_dir: str | None = "data_cards"

    # Keys that change where things are cached or shown, not what the corpus holds.
    _NOT_CONTENT = ("models_dir", "tiny_model_dir", "cache", "engine", "card_dir")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> BuildConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")
        config = cls(**dict(values))
        config.languages = [lang for lang in L.normalize_many(list(config.languages)) if lang != ENGLISH]
        if config.format not in ("arrow", "parquet"):
            raise ValueError(f"config 'format' must be arrow or parquet, not {config.format!r}")
        if int(config.shard_rows) < 1:
            raise ValueError("config 'shard_rows' must be at least 1")
        QualityThresholds.from_config(config.quality)  # fail early on unknown thresholds
        if not config.sources:
            raise ValueError("config has no sources")
        return config

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> BuildConfig:
        try:
            return cls.from_dict({**read_yaml(path), **(overrides or {})})
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def default(cls, overrides: Mapping[str, Any] | None = None) -> BuildConfig:
        text = resources.files("polyqa.data").joinpath("default_config.yaml").read_text("utf-8")
        return cls.from_dict({**yaml.safe_load(text), **(overrides or {})})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        content = {k: v for k, v in self.as_dict().items() if k not in self._NOT_CONTENT}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def all_languages(self) -> list[str]:
        return [ENGLISH, *self.languages]

    def thresholds(self) -> QualityThresholds:
        return QualityThresholds.from_config(self.quality)

    @property
    def models_path(self) -> Path:
        return Path(paths.expand(self.models_dir))

    @property
    def tiny_model_path(self) -> Path:
        return Path(paths.expand(self.tiny_model_dir)) if self.tiny_model_dir else self.models_path / "tiny-nllb"

    @property
    def cache_path(self) -> Path | None:
        return Path(paths.expand(self.cache)) if self.cache else None


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(Path(path).read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    if not isinstance(values, Mapping):
        raise ValueError("a build config must be a mapping")
    return dict(values)


def load_config(config: BuildConfig | Mapping[str, Any] | str | Path | None,
                overrides: Mapping[str, Any] | None = None) -> BuildConfig:
    """A validated config from a BuildConfig, a mapping, a YAML path or None (the embedded default).

    ``overrides`` replace keys before validation (command-line options).
    """
    if isinstance(config, BuildConfig):
        return BuildConfig.from_dict({**config.as_dict(), **overrides}) if overrides else config
    if config is None:
        return BuildConfig.default(overrides)
    if isinstance(config, Mapping):
        return BuildConfig.from_dict({**config, **(overrides or {})})
    return BuildConfig.from_yaml(config, overrides)
