"""Training: a tiny random BERT on the XQuAD-R fixture corpus, real sentence-transformers trainer."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml
from corpus_fixtures import SMALL_CORPUS_LANGS

from polyqa import languages as L
from polyqa.batching import load_training_pairs
from polyqa.encoders import ENCODER_ALIASES, MINILM_ALIASES, resolve_encoder
from polyqa.train import (
    RUN_RECORD_FILE,
    TRAINING_INFO_FILE,
    TrainConfig,
    TrainJob,
    corpus_manifest_sha256,
    train_retriever,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from 2 threads, and lose much when other jobs share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, small_corpus) -> Path:
    """A random 2-layer BERT (hidden 32) with a WordPiece vocab trained on the corpus, mean pooling."""
    from polyqa.corpus import reader
    from polyqa.tiny_encoder import build_tiny_encoder

    texts: list[str] = []
    for lang in reader.corpus_languages(small_corpus):
        table = reader.read_language(small_corpus, lang, columns=["question", "passage"])
        texts += table.column("question").to_pylist() + table.column("passage").to_pylist()
    return build_tiny_encoder(texts, tmp_path_factory.mktemp("tiny-encoder"), max_seq_length=64)


def _config(corpus, output_dir, encoder, **overrides) -> TrainConfig:
    settings = dict(
        corpus=str(corpus),
        output_dir=str(output_dir),
        base_model=str(encoder),
        languages=list(SMALL_CORPUS_LANGS),
        batch_size=16,
        max_steps=30,
        learning_rate=5e-3,
        max_seq_length=48,
        positive="sentence",
        checkpoint_steps=1000,
        logging_steps=10,
        seed=7,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def _held_losses(model_path, pairs, prompts: bool = False) -> list[float]:
    """MNRL loss on fixed held batches (32 pairs: en-en and de-es) under a model."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(model_path))
    model.eval()
    loss = MultipleNegativesRankingLoss(model)
    out = []
    for q, p in (("eng_Latn", "eng_Latn"), ("deu_Latn", "spa_Latn")):
        a, b = pairs.languages.index(q), pairs.languages.index(p)
        rows = [i for i in range(pairs.num_questions) if pairs.usable[i, a] and pairs.usable[i, b]][:32]
        texts = [pairs.text(i, a, b) for i in rows]
        with torch.no_grad():
            features = [
                model.preprocess([t["anchor"] for t in texts], prompt="query: " if prompts else None),
                model.preprocess([t["positive"] for t in texts], prompt="passage: " if prompts else None),
            ]
            out.append(float(loss(features, None)))
    return out


def test_training_lowers_the_loss_and_writes_a_loadable_recorded_model(small_corpus, tiny_encoder, tmp_path):
    from sentence_transformers import SentenceTransformer

    pairs = load_training_pairs(small_corpus, SMALL_CORPUS_LANGS, positive="sentence")
    before = _held_losses(tiny_encoder, pairs, prompts=True)
    config = _config(small_corpus, tmp_path / "run", tiny_encoder, prompts=True, max_steps=40)
    result = train_retriever(config)
    after = _held_losses(result.model_dir, pairs, prompts=True)
    for b, a in zip(before, after):
        assert a < b - 0.2, f"held-batch loss did not drop: before {before}, after {after}"

    model = SentenceTransformer(str(result.model_dir))
    emb = model.encode(["Wer gewann den Super Bowl?"], prompt_name="query")
    assert emb.shape == (1, 32)
    assert model.prompts["passage"] == "passage: "

    info = json.loads((result.model_dir / TRAINING_INFO_FILE).read_text())
    assert info["languages"] == pairs.languages == [L.normalize(x) for x in SMALL_CORPUS_LANGS]
    assert info["strategy"] == "hybrid" and info["alpha"] == 0.5 and info["steps"] == 40
    assert info["corpus_manifest_sha256"] == corpus_manifest_sha256(small_corpus)[0]
    assert info["base_model"] == str(tiny_encoder) and info["languages_per_batch"] is None
    card = (result.model_dir / "README.md").read_text()
    assert "## polyqa training" in card and info["corpus_manifest_sha256"] in card
    assert "German" in card or "deu_Latn" in card
    front = yaml.safe_load(card.split("---")[1])
    assert front["polyqa"]["languages"] == info["languages"] and "sentence-transformers" in front["tags"]
    from polyqa.evaluate.report import training_languages  # the evaluation side reads it back

    assert training_languages(str(result.model_dir)) == info["languages"]

    record = json.loads((tmp_path / "run" / RUN_RECORD_FILE).read_text())
    assert record["steps"] == 40 and record["examples_seen"] == 40 * 16
    assert record["tokens_seen"] > record["examples_seen"] * 2  # question + positive, several tokens each
    assert record["wall_seconds"] > 0 and record["examples_per_second"] > 0
    assert record["peak_rss_bytes"] > 50_000_000
    # 3 rows fail quality in German, 2 Spanish answers are unprojected (no answer sentence).
    assert record["skipped_rows"]["deu_Latn"]["quality_pass_false"] == 3
    assert record["skipped_rows"]["spa_Latn"]["null_positive"] == 2
    assert record["skipped_rows_total"] == 5
    import pyarrow.feather as feather

    assert feather.read_table(record["skipped_rows_file"]).num_rows == 5
    assert set(record["batch_kinds"]) <= {"x-x-mono", "x-y"} and sum(record["batch_kinds"].values()) == 40
    assert record["settings"]["learning_rate"] == 5e-3


class StopAtStep:
    """A real trainer callback that stops training after a given step, as a pre-emption would."""

    def __new__(cls, step: int):
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= step:
                    control.should_training_stop = True
                return control

        return _Stop()


def test_resume_from_a_checkpoint_continues_the_same_batch_sequence(small_corpus, tiny_encoder, tmp_path):
    # 3 batches per epoch, 7 steps: the interruption at step 4 falls inside the second epoch.
    common = dict(max_steps=7, checkpoint_steps=2, batches_per_epoch=3, record_batches=True, strategy="hybrid",
                  languages_per_batch=2, positive="passage")
    whole = train_retriever(_config(small_corpus, tmp_path / "whole", tiny_encoder, **common)).record

    cut = _config(small_corpus, tmp_path / "cut", tiny_encoder, **common)
    first = train_retriever(cut, callbacks=[StopAtStep(4)]).record
    assert first["global_step"] == 4
    assert (tmp_path / "cut" / "checkpoints" / "checkpoint-4").is_dir()
    resumed = train_retriever(_config(small_corpus, tmp_path / "cut", tiny_encoder, resume=True, **common)).record
    assert resumed["resumed_from"].endswith("checkpoint-4")
    assert resumed["global_step_start"] == 4 and resumed["steps"] == 3
    assert resumed["totals"]["runs"] == 2 and resumed["totals"]["steps"] == 7
    assert resumed["totals"]["examples_seen"] == whole["totals"]["examples_seen"] == 7 * 16

    assert len(whole["batches"]) == 7
    assert first["batches"] + resumed["batches"] == whole["batches"]
    # Epochs draw different batches (the sequence is not one epoch repeated).
    assert whole["batches"][0] != whole["batches"][3]
    for batch in whole["batches"]:
        ids = [qa for qa, _, _ in batch]
        assert len(ids) == len(set(ids)) == 16
        assert len({lang for _, q, p in batch for lang in (q, p)}) <= 2


def test_cli_trains_from_a_yaml_config(small_corpus, tiny_encoder, tmp_path, capsys):
    from polyqa.cli import main

    config = {
        "corpus": str(small_corpus),
        "output_dir": str(tmp_path / "cli"),
        "base_model": str(tiny_encoder),
        "languages": ["en", "de"],
        "strategy": "x-y",
        "batch_size": 8,
        "max_steps": 2,
        "max_seq_length": 32,
        "loss": "cached-mnrl",
        "mini_batch_size": 4,
        "hard_negatives": True,
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2
    info = json.loads((tmp_path / "cli" / "model" / TRAINING_INFO_FILE).read_text())
    assert info["languages"] == ["eng_Latn", "deu_Latn"] and info["strategy"] == "x-y"
    record = json.loads((tmp_path / "cli" / RUN_RECORD_FILE).read_text())
    assert record["batch_kinds"] == {"x-y": 2}
    assert record["settings"]["loss"] == "cached-mnrl"

    path.write_text(yaml.safe_dump({**config, "learning_rat": 1e-3}))
    assert main(["train", "--config", str(path)]) == 2
    assert "unknown setting(s) ['learning_rat']" in capsys.readouterr().out


def _flow_module():
    spec = importlib.util.spec_from_file_location("train_retriever_flow", REPO / "flows" / "train_retriever.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prefect_flow_runs_training(small_corpus, tiny_encoder, tmp_path, prefect_harness, monkeypatch):
    # The flow reads its YAML the way the CLI does: variables (and "~") in output_dir are
    # expanded, not taken as a folder name under the working directory.
    monkeypatch.setenv("POLYQA_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({
        "corpus": "~/not-this-corpus",  # the flow's corpus parameter overrides it
        "output_dir": "$POLYQA_HOME/runs/flow",
        "base_model": str(tiny_encoder),
        "strategy": "x-y",
        "batch_size": 8,
        "max_steps": 5,
        "max_seq_length": 32,
    }))
    overrides = {"strategy": "x-x-mono", "max_steps": 2}
    summary = _flow_module().train_retriever_flow(config_path=str(path), overrides=overrides,
                                                  corpus=str(small_corpus))
    assert summary["steps"] == 2
    assert Path(summary["model_dir"]) == tmp_path / "home" / "runs" / "flow" / "model"
    assert Path(summary["model_dir"], TRAINING_INFO_FILE).is_file()
    assert not (tmp_path / "$POLYQA_HOME").exists()
    record = json.loads(Path(summary["run_record"]).read_text())
    assert record["batch_kinds"] == {"x-x-mono": 2}
    assert record["settings"]["output_dir"] == str(tmp_path / "home" / "runs" / "flow")


def test_flow_and_cli_build_the_same_config(tmp_path, monkeypatch):
    from polyqa.cli import build_parser
    from polyqa.commands.train import load_config

    flow = _flow_module()  # imports prefect before HOME changes (prefect keeps its settings under HOME)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("POLYQA_HOME", str(tmp_path / "polyqa-home"))
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"corpus": "~/corpus", "output_dir": "~/runs/a", "strategy": "x-y",
                                    "max_steps": 5, "base_model": "xlm-r", "resume": False}))
    flow_config = flow.flow_config(str(path), overrides={"max_steps": 3, "resume": None},
                                             output_dir="$POLYQA_HOME/runs/b")
    args = build_parser().parse_args(["train", "--config", str(path), "--max-steps", "3",
                                      "--output-dir", "$POLYQA_HOME/runs/b"])
    assert flow_config == load_config(args) == TrainConfig.from_yaml(path, max_steps=3,
                                                                     output_dir="$POLYQA_HOME/runs/b")
    assert flow_config.corpus == str(tmp_path / "home" / "corpus")
    assert flow_config.output_dir == str(tmp_path / "polyqa-home" / "runs" / "b")
    assert flow_config.max_steps == 3 and flow_config.strategy == "x-y" and flow_config.resume is False
    # Every way of building a config expands paths, not only the YAML loader.
    built = TrainConfig.from_dict({"corpus": "~/corpus", "output_dir": "~/runs/a"})
    assert built.output_dir == str(tmp_path / "home" / "runs" / "a")
    assert TrainConfig(corpus="~/c", output_dir="o", resume="~/ckpt").resume == str(tmp_path / "home" / "ckpt")


def test_minilm_resolves_to_the_packaged_pretrained_model():
    from sentence_transformers import SentenceTransformer

    path = Path(resolve_encoder("minilm"))
    assert (path / "model.safetensors").stat().st_size > 50_000_000
    model = SentenceTransformer(str(path))
    a, b, c = model.encode(["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock prices fell."])
    # Pretrained, not random: paraphrases are closer than unrelated sentences.
    assert float(a @ b) > float(a @ c) + 0.2
    assert resolve_encoder("xlm-r") == "FacebookAI/xlm-roberta-base"
    assert resolve_encoder("labse") == "sentence-transformers/LaBSE"


@pytest.mark.parametrize("alias", sorted({*ENCODER_ALIASES, *MINILM_ALIASES, "XLM-R", "some-org/some-model"}))
def test_training_resolves_every_encoder_alias_like_polyqa_encoders(alias, small_corpus, tmp_path, monkeypatch):
    """Training has no alias table of its own: the model it loads and records is polyqa.encoders'."""
    import sentence_transformers

    from polyqa.train import record, trainer

    loaded = []

    class Loaded(Exception):
        pass

    def fake_model(name, *args, **kwargs):  # stops before any download
        loaded.append(name)
        raise Loaded

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", fake_model)
    config = TrainConfig(corpus=str(small_corpus), output_dir=str(tmp_path), base_model=alias)
    with pytest.raises(Loaded):
        trainer.load_model(config)
    pairs = load_training_pairs(small_corpus, ["en", "de"])
    info = record.training_info(config, pairs, {})
    assert loaded == [info["base_model_path"]] == [resolve_encoder(alias)]
    assert info["base_model"] == alias


def test_importing_training_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, polyqa.train, polyqa.commands.train; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_opening_a_job_checks_corpus_and_batches_before_any_model_loads(small_corpus, tmp_path):
    settings = {"corpus": str(small_corpus), "output_dir": str(tmp_path / "run"), "base_model": "no/such-model",
                "languages": ["en", "de"], "batch_size": 16}
    with pytest.raises(ValueError, match="eng_Latn has 240 usable rows, fewer than the batch size 1000"):
        TrainJob.open(overrides={**settings, "batch_size": 1000})
    with pytest.raises(FileNotFoundError, match="checkpoint folder"):
        TrainJob.open(overrides={**settings, "resume": str(tmp_path / "no-checkpoint")})
    job = TrainJob.open(overrides={**settings, "resume": True})
    assert job.resume_from is None and job.step_start == 0  # nothing to resume yet: a fresh start
    assert job.pairs.languages == ["eng_Latn", "deu_Latn"] and len(job.planner) == 240 // 16
    assert not (tmp_path / "run").exists()  # opening reads; only run() writes


def test_config_errors_name_the_file_and_setting(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"corpus": "c", "output_dir": "o", "strategy": "mono"}))
    with pytest.raises(ValueError, match=r"bad\.yaml: strategy must be one of"):
        TrainConfig.from_yaml(path)
    path.write_text(yaml.safe_dump({"output_dir": "o"}))
    with pytest.raises(ValueError, match=r"bad\.yaml: missing required setting\(s\) \['corpus'\]"):
        TrainConfig.from_yaml(path)
    assert TrainConfig(corpus="c", output_dir="o", temperature=0.05).scale == pytest.approx(20.0)
