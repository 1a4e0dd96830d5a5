"""What an export takes: the corpus, the format, which rows and pairs, the split and the negatives."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EXPORT_FORMATS = ("sentence-transformers", "flagembedding", "tevatron", "beir")
PAIRS = ("x-x", "x-y", "all")


class ExportConfig(BaseModel):
    """Settings of one export; ``polyqa export`` options and the ``export-corpus`` flow's parameters.

    Declared and checked like every polyqa config (:mod:`polyqa.settings`), but as a frozen
    pydantic model: once checked it does not change, and ``model_dump`` records it in export.json.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: str = Field(description="corpus folder (the --output of build-corpus or import-parallel)")
    output: str = Field(description="export folder: new, empty, or an earlier export of polyqa's")
    format: Literal["sentence-transformers", "flagembedding", "tevatron", "beir"] = Field(
        description="what to write: " + ", ".join(EXPORT_FORMATS))
    languages: list[str] | None = Field(None, description="languages to export (NLLB or ISO codes); default all")
    pairs: Literal["x-x", "x-y", "all"] = Field(
        "all", description="(query language, positive language) pairs: x-x same language, x-y different, all both")
    positive: Literal["passage", "sentence"] = Field(
        "passage", description="the positive: the row's passage, or its answer sentence (as LAReQA retrieves)")
    heldout_titles_file: str | None = Field(
        None, description="titles file of held-out articles (as polyqa train writes): left out of training "
        "formats, the only queries of beir")
    heldout_fraction: float | None = Field(
        None, gt=0, lt=1, description="hold out this share of the articles, drawn with seed (instead of a file)")
    seed: int = Field(0, description="seed of the held-out draw and of random negative sampling")
    quality_filter: bool = Field(True, description="leave out rows whose quality_pass is false")
    negatives: str | None = Field(None, description="a polyqa mine-negatives folder to take hard negatives from")
    mine_model: str | None = Field(
        None, description="mine hard negatives with this sentence-transformers encoder (kept under the export)")
    num_negatives: int = Field(3, ge=1, le=200, description="hard negatives per example")
    range_min: int = Field(0, ge=0, description="mining: skip the candidates ranked this high or higher")
    range_max: int = Field(50, ge=1, description="mining: consider candidates up to this rank")
    relative_margin: float | None = Field(
        0.05, ge=0, lt=1, description="mining: a negative scores at most (1 - margin) x the positive's score")
    max_score: float | None = Field(None, description="mining: a negative scores at most this (cosine)")
    sampling: Literal["top", "random"] = Field("top", description="mining: the best-scoring or a random pick")
    keep_scores: bool = Field(False, description="flagembedding: write pos_scores / neg_scores from the miner")
    query_prompt: str | None = Field(None, description="flagembedding: the query instruction, written as prompt")
    batch_size: int = Field(64, ge=1, description="mining: encoder batch size")
    device: str | None = Field(None, description="mining: cpu, cuda, cuda:1 ... (default: cuda when available)")

    @field_validator("corpus", "output", "heldout_titles_file", "negatives")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        """Paths as absolute folders (``~`` and variables expanded), so a rerun from elsewhere is the same export."""
        if value is None:
            return None
        from pathlib import Path

        from polyqa import paths

        return str(Path(paths.expand(value)).resolve())

    @model_validator(mode="after")
    def _consistent(self) -> ExportConfig:
        if self.heldout_titles_file and self.heldout_fraction is not None:
            raise ValueError("give heldout_titles_file or heldout_fraction, not both")
        if self.negatives and self.mine_model:
            raise ValueError("give negatives (a mined folder) or mine_model, not both")
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min {self.range_min} must be below range_max {self.range_max}")
        if self.keep_scores and not (self.negatives or self.mine_model):
            raise ValueError("keep_scores needs mined negatives (negatives or mine_model)")
        return self

    @property
    def mines(self) -> bool:
        return bool(self.negatives or self.mine_model)

    @classmethod
    def build(cls, source: str = "polyqa export", **settings: Any) -> ExportConfig:
        """The config, or a ConfigError naming the setting (and ``source``) that is wrong."""
        from polyqa import settings as config_settings

        return config_settings.build(cls, settings, source)
