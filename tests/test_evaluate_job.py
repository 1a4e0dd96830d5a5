"""One job per pipeline: EvaluationConfig is the one source of settings (CLI and flow), the benchmark
registry chooses the benchmark, and encoder aliases come from polyqa.encoders."""

from __future__ import annotations

import inspect
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from polyqa import encoders
from polyqa.cli import build_parser
from polyqa.cli import main as polyqa_main
from polyqa.evaluate.benchmark import (
    Benchmark,
    Candidate,
    Query,
    UnknownBenchmarkError,
    benchmark_names,
    load_benchmark,
    register_benchmark,
)
from polyqa.evaluate.config import EvaluationConfig

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def _flow():
    sys.path.insert(0, str(REPO / "flows"))
    try:
        from evaluate_retriever import evaluate_retriever
    finally:
        sys.path.pop(0)
    return evaluate_retriever


def _cli_config(argv: list[str]) -> EvaluationConfig:
    from polyqa.commands.evaluate import settings_from_args

    args = build_parser().parse_args(["evaluate", *argv])
    return EvaluationConfig.from_dict(settings_from_args(args))


def test_flow_parameters_are_the_config_fields_with_the_same_defaults():
    from prefect.utilities.callables import parameter_schema

    from polyqa import settings

    schema = parameter_schema(_flow().fn)
    names = [f.name for f in fields(EvaluationConfig)]
    assert list(schema.properties) == names
    assert sorted(schema.required) == sorted(settings.required(EvaluationConfig)) == ["benchmark", "model", "output"]
    defaults = settings.defaults(EvaluationConfig)
    for name in names:
        if name in defaults:
            assert schema.properties[name]["default"] == defaults[name], name
        assert schema.properties[name].get("description"), f"{name} has no description"


def test_triggered_flow_and_cli_build_the_same_config(tmp_path):
    """prefect.yaml passes a few top-level parameters; the rest take EvaluationConfig's defaults,
    so a triggered evaluation caches embeddings beside its output exactly as the CLI does."""
    out = str(tmp_path / "eval" / "xquad-r.json")
    given = {"model": "minilm", "benchmark": "xquad-r", "output": out, "data_dir": None,
             "candidates": "sentence+context"}
    bound = inspect.signature(_flow().fn).bind(**given)
    bound.apply_defaults()  # what Prefect does before calling the flow
    from_flow = EvaluationConfig.from_dict(bound.arguments)
    from_cli = _cli_config(["--model", "minilm", "--benchmark", "xquad-r", "--output", out])
    assert from_flow == from_cli
    assert from_flow.embedding_cache == Path(out).with_suffix(".embcache")
    assert from_flow.split is None and from_flow.chunk_size == 1024


def test_every_config_field_has_a_cli_option():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["evaluate"]
    dests = {a.dest for a in sub._actions}
    assert {f.name for f in fields(EvaluationConfig)} <= dests
    config = _cli_config(["--model", "org/m", "--benchmark", "mlqa-r", "--output", "o", "--no-cache",
                          "--exclude-titles", "t.txt", "--languages", "en,de"])
    assert not config.cache and config.embedding_cache is None and config.output == "o.json"
    assert config.exclude_titles_file == "t.txt" and config.languages == ["en", "de"]


def test_evaluate_resolves_encoder_aliases_through_polyqa_encoders(monkeypatch):
    """`polyqa evaluate --model xlm-r` loads FacebookAI/xlm-roberta-base: train and evaluate share one table."""
    import sentence_transformers

    from polyqa.evaluate import report, retrieval

    loaded = []
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", lambda name, **kwargs: loaded.append(name))
    retrieval.load_encoder("xlm-r")
    assert loaded == ["FacebookAI/xlm-roberta-base"]
    assert retrieval.resolve_encoder is encoders.resolve_encoder
    assert report.resolve_encoder is encoders.resolve_encoder
    for alias, hub_id in encoders.ENCODER_ALIASES.items():
        loaded.clear()
        retrieval.load_encoder(alias.upper())
        assert loaded == [hub_id]
    # No alias table of its own left in the evaluation package.
    assert not hasattr(retrieval, "MINILM_ALIASES") and not hasattr(retrieval, "resolve_model")
    # Aliases and their hub id share one embedding cache key.
    assert retrieval.model_fingerprint("xlm-r") == retrieval.model_fingerprint("FacebookAI/xlm-roberta-base")


def test_unknown_benchmark_lists_the_known_ones(tmp_path, capsys):
    known = benchmark_names()
    assert {"xquad-r", "mlqa-r", "miracl"} <= set(known)
    listing = "choose one of: " + ", ".join(known)
    with pytest.raises(UnknownBenchmarkError, match=f"unknown benchmark 'squad-r'.*{listing}"):
        load_benchmark("squad-r", FIXTURES / "mlqa-r")
    with pytest.raises(UnknownBenchmarkError, match=listing):
        EvaluationConfig(model="m", benchmark="squad-r", output=str(tmp_path / "x.json"))
    code = polyqa_main(["evaluate", "--model", "m", "--benchmark", "squad-r", "--output", str(tmp_path / "x.json")])
    assert code == 2 and listing in capsys.readouterr().err


def test_options_a_benchmark_does_not_take_are_refused(tmp_path):
    with pytest.raises(ValueError, match="titles do not apply to benchmark 'miracl'.*lareqa, mlqa-r, polyqa-corpus, xquad-r"):
        load_benchmark("miracl", FIXTURES / "miracl", titles={"Warsaw"})
    with pytest.raises(ValueError, match="split do not apply to benchmark 'mlqa-r'.*miracl"):
        load_benchmark("mlqa-r", FIXTURES / "mlqa-r", split="dev")
    with pytest.raises(ValueError, match="exclude_titles do not apply to benchmark 'miracl'"):
        EvaluationConfig(model="m", benchmark="miracl", output=str(tmp_path / "x"), exclude_titles_file="t.txt")


def test_a_registered_benchmark_is_chosen_by_name(monkeypatch, tmp_path):
    """A new benchmark is one registration: config, job and report find it without a branch."""
    from polyqa.evaluate import benchmark as registry
    from polyqa.evaluate.result import summarize_lareqa
    from polyqa.evaluate.retrieval import score_lareqa
    from polyqa.evaluate.run import EvaluateJob

    monkeypatch.setattr(registry, "_BENCHMARKS", dict(registry._BENCHMARKS))

    @register_benchmark("toy", score=score_lareqa, summarize=summarize_lareqa, contexts=True)
    def load_toy(data_dir=None, *, languages=None, max_questions=None) -> Benchmark:
        """Two languages, one question each."""
        cands = [Candidate("eng_Latn", "a river", "ctx", "T", "en/0"),
                 Candidate("deu_Latn", "ein Fluss", "ctx", "T", "de/0"),
                 Candidate("eng_Latn", "a city", "ctx", "T", "en/1")]
        queries = [Query("q", "eng_Latn", "river?", "T", (0, 1)), Query("q", "deu_Latn", "Fluss?", "T", (0, 1))]
        return Benchmark("toy", ["eng_Latn", "deu_Latn"], queries, cands)

    class Model:  # stands for a SentenceTransformer: one fixed vector per text
        tokenizer = None

        def encode(self, texts, **_):
            return np.array([[1.0, 0.0] if ("river" in t or "Fluss" in t) else [0.0, 1.0] for t in texts])

    job = EvaluateJob({"model": "tests/toy-model", "benchmark": "toy", "output": str(tmp_path / "toy")}, model=Model())
    assert job.benchmark.name == "toy" and job.candidate_mode == "sentence+context"
    result = job.run()
    assert result["settings"]["multilingual"]["mAP"] == 1.0 and result["candidates"] == "sentence+context"
    assert (tmp_path / "toy.json").exists() and (tmp_path / "toy.heatmap.png").exists()
    assert job.config.embedding_cache == tmp_path / "toy.embcache" and any(job.config.embedding_cache.iterdir())


@pytest.mark.parametrize("setting, value, message", [
    ("batch_size", 0, "batch_size must be >= 1"),
    ("chunk_size", -5, "chunk_size must be >= 1"),
    ("max_questions", 0, "max_questions must be >= 1"),
    ("batch_size", "64", "batch_size must be a whole number"),
    ("candidates", "paragraph", "candidates must be one of sentence, sentence\\+context"),
    ("device", "tpu", "device must be one of cpu, cuda"),
    ("languages", ["en", "xx"], "languages: unknown language"),
    ("model", "labsee", "model: unknown model alias 'labsee'.*did you mean labse"),
    ("trust_remote_code", "no", "trust_remote_code must be true or false"),
    ("benchmark", "xquad", "unknown benchmark 'xquad'"),
    ("colour", "red", r"unknown setting\(s\) \['colour'\]"),
])
def test_invalid_evaluation_settings_are_refused_naming_the_setting(setting, value, message, tmp_path):
    from polyqa.errors import ConfigError

    settings = {"model": "minilm", "benchmark": "xquad-r", "output": str(tmp_path / "o.json"), setting: value}
    with pytest.raises(ConfigError, match=message):
        EvaluationConfig.from_dict(settings, source="evaluate-test")


def test_a_missing_titles_file_fails_at_once_naming_the_parameter(tmp_path):
    from polyqa.errors import ConfigError
    from polyqa.evaluate.run import EvaluateJob

    with pytest.raises(ConfigError, match=r"articles_file not found.*set articles_file \(--articles-file\)"):
        EvaluateJob({"model": "minilm", "benchmark": "polyqa-corpus", "output": str(tmp_path / "o.json"),
                     "data_dir": str(tmp_path), "articles_file": str(tmp_path / "missing.txt")})
