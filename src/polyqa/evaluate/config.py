"""``EvaluationConfig``: every setting of one evaluation, from keywords, a mapping or a flow's parameters.

The CLI (``polyqa evaluate``), the Prefect flow and the study all build their
config with :meth:`EvaluationConfig.from_dict`, and the flow's parameters are
generated from its settings (:func:`config_signature`), so a new setting reaches
all of them without edits elsewhere. Light on purpose (no numpy, no torch): the
CLI reads it while building its parser.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from polyqa import paths
from polyqa.errors import ConfigError, check_languages
from polyqa.settings import Codes, Flag, Location, Whole, build, config, defaults, help_of, setting, signature

CANDIDATE_MODES = ("sentence", "sentence+context")
# Settings that name files or folders: ``~``, ``$POLYQA_HOME`` and ``$POLYQA_DATA_DIR`` are expanded.
PATH_FIELDS = ("data_dir", "output", "articles_file", "exclude_titles_file", "cache_dir", "run_file")


DEVICES = ("cpu", "cuda")


@config
class EvaluationConfig:
    """Everything one evaluation needs; the CLI options and the flow parameters map onto these settings."""

    model: str = setting(
        help="SentenceTransformer folder, hub id, or an alias of polyqa.encoders (minilm, xlm-r, labse, ...)")
    benchmark: str = setting(
        help="a registered benchmark: xquad-r, mlqa-r, lareqa (any folder of <lang>.json SQuAD files), "
        "polyqa-corpus (a polyqa corpus folder), beir (a BEIR folder, e.g. of polyqa export) or miracl")
    output: Location = setting(help="OUT.json (OUT.md and OUT.heatmap.png are written beside it)")
    data_dir: Location | None = setting(
        None, help="benchmark folder (xquad-r, mlqa-r, lareqa: <lang>.json SQuAD v1.1 files, with LAReQA sentence "
        "breaks or segmented by polyqa; polyqa-corpus: the corpus folder; miracl: its "
        "topics/qrels/corpus layout) or, for xquad-r, a hub id; default: $POLYQA_DATA_DIR/<benchmark>, "
        "else google-research-datasets/xquad_r from the hub (paragraphs segmented by polyqa, needs network)")
    candidates: Literal[CANDIDATE_MODES] = setting(
        "sentence+context",
        help="encode candidate sentences alone (sentence) or as 'sentence <sep> paragraph' (sentence+context)")
    languages: Codes | None = setting(
        None, help="subset of languages, any spelling (ar, de or arb_Arab, ...); default: all")
    batch_size: Whole = setting(64, ge=1, help="texts per encoding batch")
    device: Literal[DEVICES] = setting("cpu", help="cpu or cuda")
    max_questions: Whole | None = setting(None, ge=1, help="keep the first N question ids (quick runs)")
    articles_file: Location | None = setting(
        None, help="evaluate only articles with these titles (one per line, or a JSON list): held-out splits")
    exclude_titles_file: Location | None = setting(None, help="file of article titles to leave out")
    query_prompt: str = setting("", help="text prepended to queries, e.g. 'query: '")
    passage_prompt: str = setting("", help="text prepended to candidates, e.g. 'passage: '")
    split: str | None = setting(None, help="MIRACL split (default dev)")
    cache: Flag = setting(True, help="save embedding blocks and resume from them (a rerun, a retried task)")
    cache_dir: Location | None = setting(None, help="embedding cache folder (default: OUT.embcache beside OUT.json)")
    chunk_size: Whole = setting(1024, ge=1, help="queries scored per matrix product")
    run_file: Location | None = setting(
        None, help="also write each query's 100 best candidates as a TREC run (for trec_eval, pytrec_eval, ranx)")
    trust_remote_code: Flag = setting(
        False, help="run Python code shipped with a hub model (off: only models transformers knows load)")

    def __post_init__(self) -> None:
        # Every construction passes here (keywords, from_dict, dataclasses.replace): checked once, the same way.
        for name in PATH_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, Path)):
                setattr(self, name, paths.expand(value))
        self.output = str(output_paths(self.output)["json"])
        from polyqa.evaluate.benchmark import benchmark_kind

        # An unknown benchmark, or an option it does not take, fails here rather than after loading.
        benchmark_kind(self.benchmark).check_options(
            titles=self.articles_file, exclude_titles=self.exclude_titles_file, split=self.split)
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
        return build(cls, {key: value for key, value in data.items() if value is not None}, source)


HELP = help_of(EvaluationConfig)  # the CLI's --help and the flow's parameter descriptions


def config_defaults() -> dict[str, Any]:
    """Setting -> default (required settings absent)."""
    return defaults(EvaluationConfig)


def config_signature(return_annotation: Any = inspect.Signature.empty) -> inspect.Signature:
    """EvaluationConfig's settings as a function signature (a Prefect flow's parameters)."""
    return signature(EvaluationConfig, return_annotation)


def output_paths(output: str | Path) -> dict[str, Path]:
    """OUT.json, OUT.md and OUT.heatmap.png for an output given with or without ``.json``."""
    out = Path(output)
    stem = out.with_suffix("") if out.suffix == ".json" else out
    return {"json": stem.with_name(stem.name + ".json"), "md": stem.with_name(stem.name + ".md"),
            "heatmap": stem.with_name(stem.name + ".heatmap.png")}
