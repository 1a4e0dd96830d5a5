"""The corpus build configuration: :class:`BuildConfig`, read from YAML, a mapping or the embedded default."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from polyqa import languages as L
from polyqa import paths
from polyqa.errors import ConfigError
from polyqa.settings import Codes, Flag, Whole, build, check_keys, config, read_yaml, setting
from polyqa.languages import ENGLISH
from polyqa.corpus.quality import ProjectionSettings, QualityThresholds


COMPRESSIONS = {"arrow": ("zstd", "lz4", "none"), "parquet": ("zstd", "snappy", "gzip", "brotli", "lz4", "none")}
ENGINE_KEYS = ("device", "device_index", "inter_threads", "intra_threads")


@config
class BuildConfig:
    """Everything a corpus build needs; a YAML build config maps onto these settings one to one."""

    name: str = setting("polyqa-default", help="corpus name (folder of its card, manifest name)")
    sources: list[Any] = setting(
        default_factory=lambda: ["polyqa_sample"], help="English QA sources: presets or {kind, ...} mappings")
    languages: Codes = setting(
        default_factory=lambda: ["deu_Latn", "fra_Latn", "spa_Latn"],
        help="target languages, any code form (English, the source language, is always included)")
    shard_rows: Whole = setting(1000, ge=1, help="rows per shard and language")
    format: Literal["arrow", "parquet"] = setting("arrow", help="shard format: arrow (IPC files) or parquet")
    compression: str = setting("zstd", help="shard compression; arrow: zstd, lz4, none; parquet also snappy, "
                               "gzip, brotli")
    model: str | None = setting(
        "tiny", help="translation model: tiny, a hub name, a local model folder, or null (imports only)")
    revision: str | None = setting(None, help="hub revision (commit) of the model")
    quantization: str = setting("int8", help="CTranslate2 weight type of the converted model")
    # Kept unexpanded, so a config sent to another machine uses that machine's POLYQA_HOME.
    models_dir: str = setting("$POLYQA_HOME/models", help="where converted models are kept")
    tiny_model_dir: str | None = setting(None, help="where the tiny model is built (default models_dir/tiny-nllb)")
    cache: str | None = setting("$POLYQA_HOME/translations.sqlite", help="translation cache; null: none")
    decoding: dict[str, Any] = setting(default_factory=dict, help="decoding settings (beam_size, ...)")
    engine: dict[str, Any] = setting(
        default_factory=dict, help="CTranslate2 engine: " + ", ".join(ENGINE_KEYS))
    quality: dict[str, Any] = setting(default_factory=dict, help="quality thresholds of translated rows")
    projection: dict[str, Any] = setting(
        default_factory=dict, help="answer span projection: {markers: true, open: '[', close: ']'}")
    exclude_passages_from: list[str] = setting(
        default_factory=list, help="corpora or files whose passages are left out (no overlap with a benchmark)")
    dedup_questions: Flag = setting(
        True, help="the same question on the same passage under another id goes to the quarantine")
    card_dir: str | None = setting(
        None, help="a folder to copy the card to; it always goes to <corpus>/README.md")

    # Keys that change where things are cached or shown, not what the corpus holds.
    _NOT_CONTENT = ("models_dir", "tiny_model_dir", "cache", "engine", "card_dir")

    def __post_init__(self) -> None:
        # Every construction passes here (from_dict, from_yaml, keywords, dataclasses.replace).
        self.languages = [lang for lang in L.normalize_many(list(self.languages)) if lang != ENGLISH]
        check_numbers(self)
        # Stored complete, so the fingerprint is the same whether defaults are written out or not.
        self.projection = ProjectionSettings.from_config(self.projection).as_dict()
        if not self.sources:
            raise ConfigError("config has no sources", todo="list at least one source under sources")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "build config") -> BuildConfig:
        return build(cls, values, source)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> BuildConfig:
        return cls.from_dict({**read_yaml(path), **(overrides or {})}, source=str(path))

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

    def projection_settings(self) -> ProjectionSettings:
        return ProjectionSettings.from_config(self.projection)

    @property
    def models_path(self) -> Path:
        return Path(paths.expand(self.models_dir))

    @property
    def tiny_model_path(self) -> Path:
        return Path(paths.expand(self.tiny_model_dir)) if self.tiny_model_dir else self.models_path / "tiny-nllb"

    @property
    def cache_path(self) -> Path | None:
        return Path(paths.expand(self.cache)) if self.cache else None


def _number(value: Any, integer: bool = False) -> bool:
    kinds = (int,) if integer else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool) and value == value  # not NaN


def _require(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {rule}, got {value!r}")


def check_numbers(config: BuildConfig) -> None:
    """The nested settings (decoding, engine, quality) and compression and quantization, which depend on
    other settings or on the translation code, so a bad value fails here and not in the middle of a build."""
    _require(config.compression in COMPRESSIONS[config.format], "compression",
             f"one of {', '.join(COMPRESSIONS[config.format])} for {config.format}", config.compression)
    from polyqa.translate.convert import QUANTIZATIONS

    _require(config.quantization in QUANTIZATIONS, "quantization", f"one of {', '.join(QUANTIZATIONS)}",
             config.quantization)
    _require(isinstance(config.decoding, Mapping), "decoding", "a mapping", config.decoding)
    _require(isinstance(config.engine, Mapping), "engine", "a mapping", config.engine)
    _require(isinstance(config.quality, Mapping), "quality", "a mapping", config.quality)
    from polyqa.translate.engine import DecodingSettings

    check_keys(DecodingSettings, config.decoding, section="decoding")
    decoding_rules = {"beam_size": (1, True), "max_length_ratio": (0, False), "max_length_extra": (0, True),
                      "no_repeat_ngram_size": (0, True), "repetition_penalty": (0, False),
                      "max_batch_tokens": (1, True), "max_output_tokens": (1, True),
                      "min_output_tokens": (0, True), "max_input_tokens": (3, True)}
    for key, value in config.decoding.items():
        low, integer = decoding_rules.get(key, (0, False))
        if key == "max_output_tokens" and value is None:
            continue
        _require(_number(value, integer) and value >= low, f"decoding.{key}",
                 f"{'an integer' if integer else 'a number'} of at least {low}", value)
    if config.decoding.get("repetition_penalty") is not None:
        _require(config.decoding["repetition_penalty"] > 0, "decoding.repetition_penalty", "above 0",
                 config.decoding["repetition_penalty"])
    check_keys(ENGINE_KEYS, config.engine, section="engine")
    engine = config.engine
    if "device" in engine:
        _require(engine["device"] in ("cpu", "cuda"), "engine.device", "cpu or cuda", engine["device"])
    for key, low in (("inter_threads", 1), ("intra_threads", 0)):
        if engine.get(key) is not None:
            _require(_number(engine[key], integer=True) and engine[key] >= low, f"engine.{key}",
                     f"an integer of at least {low}", engine[key])
    if "device_index" in engine:
        indexes = engine["device_index"] if isinstance(engine["device_index"], list) else [engine["device_index"]]
        _require(bool(indexes) and all(_number(i, integer=True) and i >= 0 for i in indexes), "engine.device_index",
                 "an integer of at least 0 or a list of them", engine["device_index"])
    check_thresholds(config.quality)


def check_thresholds(values: Mapping[str, Any]) -> QualityThresholds:
    """The quality thresholds, each in its range (QualityThresholds itself checks only the names)."""
    thresholds = QualityThresholds.from_config(dict(values))
    rules = {"min_length_ratio": (0, None), "max_length_ratio": (0, None), "max_repetition": (0, 1),
             "repetition_ngram": (1, None), "min_langid_score": (0, 1), "fuzzy_threshold": (0, 100)}
    for key, (low, high) in rules.items():
        value = getattr(thresholds, key)
        integer = key == "repetition_ngram"
        ok = _number(value, integer) and value >= low and (high is None or value <= high)
        rule = f"{'an integer' if integer else 'a number'} " + (f"from {low} to {high}" if high is not None
                                                                  else f"of at least {low}")
        _require(ok, f"quality.{key}", rule, value)
    if thresholds.min_length_ratio > thresholds.max_length_ratio:
        raise ConfigError(f"quality.min_length_ratio ({thresholds.min_length_ratio}) is above "
                          f"quality.max_length_ratio ({thresholds.max_length_ratio})")
    return thresholds


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
