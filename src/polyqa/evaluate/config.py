"""``EvaluationConfig``: every setting of one evaluation, from keywords, a mapping or a flow's parameters.

The CLI (``polyqa evaluate``), the Prefect flow and the study all build their
config with :meth:`EvaluationConfig.from_dict`, and the flow's parameters are
generated from its fields (:func:`config_signature`), so a new setting reaches
all of them without edits elsewhere. Light on purpose (no numpy, no torch): the
CLI reads it while building its parser.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from polyqa import paths
from polyqa.errors import (
    ConfigError,
    check_bool,
    check_choice,
    check_int,
    check_languages,
    construct_config,
)

CANDIDATE_MODES = ("sentence", "sentence+context")
# Settings that name files or folders: ``~``, ``$POLYQA_HOME`` and ``$POLYQA_DATA_DIR`` are expanded.
PATH_FIELDS = ("data_dir", "output", "articles_file", "exclude_titles_file", "cache_dir", "run_file")


# One line per setting: the CLI's --help and the flow's parameter descriptions.
HELP = {
    "model": "SentenceTransformer folder, hub id, or an alias of polyqa.encoders (minilm, xlm-r, labse, ...)",
    "benchmark": "a registered benchmark: xquad-r, mlqa-r, lareqa (any folder of <lang>.json SQuAD files), "
                 "polyqa-corpus (a polyqa corpus folder), beir (a BEIR folder, e.g. of polyqa export) or miracl",
    "output": "OUT.json (OUT.md and OUT.heatmap.png are written beside it)",
    "data_dir": "benchmark folder (xquad-r, mlqa-r, lareqa: <lang>.json SQuAD v1.1 files, with LAReQA sentence "
                "breaks or segmented by polyqa; polyqa-corpus: the corpus folder; miracl: its "
                "topics/qrels/corpus layout) or, for xquad-r, a hub id; default: $POLYQA_DATA_DIR/<benchmark>, "
                "else google-research-datasets/xquad_r from the hub (paragraphs segmented by polyqa, needs network)",
    "candidates": "encode candidate sentences alone (sentence) or as 'sentence <sep> paragraph' (sentence+context)",
    "languages": "subset of languages, any spelling (ar, de or arb_Arab, ...); default: all",
    "batch_size": "texts per encoding batch",
    "device": "cpu or cuda",
    "max_questions": "keep the first N question ids (quick runs)",
    "articles_file": "evaluate only articles with these titles (one per line, or a JSON list): held-out splits",
    "exclude_titles_file": "file of article titles to leave out",
    "query_prompt": "text prepended to queries, e.g. 'query: '",
    "passage_prompt": "text prepended to candidates, e.g. 'passage: '",
    "split": "MIRACL split (default dev)",
    "cache": "save embedding blocks and resume from them (a rerun, a retried task)",
    "cache_dir": "embedding cache folder (default: OUT.embcache beside OUT.json)",
    "chunk_size": "queries scored per matrix product",
    "run_file": "also write each query's 100 best candidates as a TREC run (for trec_eval, pytrec_eval, ranx)",
    "trust_remote_code": "run Python code shipped with a hub model (off: only models transformers knows load)",
}
DEVICES = ("cpu", "cuda")


@dataclass
class EvaluationConfig:
    """Everything one evaluation needs; the CLI options and the flow parameters map onto these fields."""

    model: str
    benchmark: str
    output: str
    data_dir: str | None = None
    candidates: str = "sentence+context"
    languages: list[str] | None = None
    batch_size: int = 64
    device: str = "cpu"
    max_questions: int | None = None
    articles_file: str | None = None
    exclude_titles_file: str | None = None
    query_prompt: str = ""
    passage_prompt: str = ""
    split: str | None = None
    cache: bool = True
    cache_dir: str | None = None
    chunk_size: int = 1024
    run_file: str | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        # Every construction passes here (keywords, from_dict, dataclasses.replace): checked once, the same way.
        for name in PATH_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, Path)):
                setattr(self, name, paths.expand(value))
        self.output = str(output_paths(self.output)["json"])
        if isinstance(self.languages, str):
            self.languages = [s.strip() for s in self.languages.split(",") if s.strip()]
        from polyqa.evaluate.benchmark import benchmark_kind

        # An unknown benchmark, or an option it does not take, fails here rather than after loading.
        benchmark_kind(self.benchmark).check_options(
            titles=self.articles_file, exclude_titles=self.exclude_titles_file, split=self.split)
        check_choice("candidates", self.candidates, CANDIDATE_MODES)
        check_choice("device", self.device, DEVICES)
        for name in ("batch_size", "chunk_size"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("max_questions", self.max_questions, minimum=1, optional=True)
        check_bool("cache", self.cache)
        check_bool("trust_remote_code", self.trust_remote_code)
        for name in ("query_prompt", "passage_prompt"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be text, got {getattr(self, name)!r}")
        check_languages("languages", self.languages)
        from polyqa.encoders import check_model_name

        check_model_name(self.model, "model")

    def check_paths(self) -> None:
        """Files the user named must be there before any model loads; the error names the setting
        (the option on the command line, the parameter in a flow)."""
        options = {"articles_file": "--articles-file", "exclude_titles_file": "--exclude-titles"}
        for name, option in options.items():
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ConfigError(f"{name} not found", where=str(value),
                                  todo=f"set {name} ({option}) to a file of titles, one per line")

    @property
    def kind(self):
        """The registered benchmark (:class:`~polyqa.evaluate.benchmark.BenchmarkKind`)."""
        from polyqa.evaluate.benchmark import benchmark_kind

        return benchmark_kind(self.benchmark)

    @property
    def embedding_cache(self) -> Path | None:
        """Where embedding blocks are saved, or None when caching is off."""
        if not self.cache:
            return None
        return Path(self.cache_dir) if self.cache_dir else Path(self.output).with_suffix(".embcache")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> EvaluationConfig:
        """A config from settings; None means "not given" (the default). Errors name ``source``."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown}", where=source, todo=f"known: {known}")
        settings = {key: value for key, value in data.items() if value is not None}
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in settings]
        if missing:
            raise ConfigError(f"missing required setting(s) {missing}", where=source)
        return construct_config(cls, settings, source)


def config_defaults() -> dict[str, Any]:
    """Field name -> default (required fields absent)."""
    return {f.name: f.default for f in fields(EvaluationConfig) if f.default is not MISSING}


def config_signature(return_annotation: Any = inspect.Signature.empty) -> inspect.Signature:
    """EvaluationConfig's fields as keyword-only parameters with the same types and defaults.

    Set as a function's ``__signature__`` it makes the function's parameters (a Prefect
    flow's parameter schema) follow the config without listing the fields again.
    """
    hints = typing.get_type_hints(EvaluationConfig)
    params = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name],
                          default=inspect.Parameter.empty if f.default is MISSING else f.default)
        for f in fields(EvaluationConfig)
    ]
    return inspect.Signature(params, return_annotation=return_annotation)


def output_paths(output: str | Path) -> dict[str, Path]:
    """OUT.json, OUT.md and OUT.heatmap.png for an output given with or without ``.json``."""
    out = Path(output)
    stem = out.with_suffix("") if out.suffix == ".json" else out
    return {"json": stem.with_name(stem.name + ".json"), "md": stem.with_name(stem.name + ".md"),
            "heatmap": stem.with_name(stem.name + ".heatmap.png")}
