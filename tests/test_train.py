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
    from polyqa.evaluate.result import training_languages  # the evaluation side reads it back

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
    err = capsys.readouterr().err
    assert "error: unknown setting(s) ['learning_rat']" in err and "did you mean ['learning_rate']" in err


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
    from prefect_artifacts import latest_artifact

    artifact = latest_artifact("training-run")
    assert artifact.type == "markdown" and f"Training run `{record['run_id']}`" in artifact.data
    assert "steps 2" in artifact.data and "x-x-mono" in artifact.data


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
    with pytest.raises(ValueError, match=r"strategy must be one of .*got 'mono': .*bad\.yaml"):
        TrainConfig.from_yaml(path)
    path.write_text(yaml.safe_dump({"output_dir": "o"}))
    with pytest.raises(ValueError, match=r"missing required setting\(s\) \['corpus'\]: .*bad\.yaml"):
        TrainConfig.from_yaml(path)
    assert TrainConfig(corpus="c", output_dir="o", temperature=0.05).scale == pytest.approx(20.0)


# --------------------------------------------------------------------------- held-out articles


def test_exclude_titles_leave_articles_out_of_training_counted_with_a_reason(small_corpus, tmp_path):
    titles_file = tmp_path / "heldout.txt"
    titles_file.write_text("# held out for evaluation\nWarsaw\n")
    settings = {"corpus": str(small_corpus), "output_dir": str(tmp_path / "run"), "base_model": "org/model",
                "languages": ["en", "de"], "batch_size": 16, "exclude_titles": ["Normans"],
                "exclude_titles_file": str(titles_file)}
    job = TrainJob.open(overrides=settings)
    assert job.heldout_titles == ["Normans", "Warsaw"]
    for lang in ("eng_Latn", "deu_Latn"):
        assert job.pairs.skipped[lang]["held_out_article"] == 23 + 8
    en = job.pairs.languages.index("eng_Latn")
    from polyqa.corpus import reader

    titles = reader.read_language(small_corpus, "en", ["title"]).column("title").to_pylist()
    assert not any(job.pairs.usable[i, en] for i, t in enumerate(titles) if t in {"Warsaw", "Normans"})
    # German rows failing quality in held-out articles count once, as held out.
    assert job.pairs.skipped_total == 2 * 31 + sum(
        1 for i in (3, 50, 100) if titles[i] not in {"Warsaw", "Normans"})
    table = job.pairs.skipped_table().to_pylist()
    assert {r["field"] for r in table if r["reason"].startswith("held_out_article")} == {"title"}

    with pytest.raises(ValueError, match="none of the 1 titles to exclude is an article of the corpus"):
        TrainJob.open(overrides={**settings, "exclude_titles": ["No_Such_Article"], "exclude_titles_file": None})
    # heldout_fraction draws whole articles, the same ones for the same seed.
    drawn = TrainJob.open(overrides={**settings, "exclude_titles": None, "exclude_titles_file": None,
                                     "heldout_fraction": 0.3, "heldout_seed": 4}).heldout_titles
    again = TrainJob.open(overrides={**settings, "exclude_titles": None, "exclude_titles_file": None,
                                     "heldout_fraction": 0.3, "heldout_seed": 4}).heldout_titles
    assert drawn == again and len(drawn) == 3  # 30% of the corpus's 9 articles


# --------------------------------------------------------------------------- one writer, checkpoints, resume


def _hold_lock_in_another_process(folder: Path, what: str):
    import subprocess
    import sys

    code = ("import sys, time; from polyqa.locking import OutputLock; "
            f"lock = OutputLock({str(folder)!r}, {what!r}).acquire(); print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_training_run_on_the_same_output_is_refused_naming_the_holder(small_corpus, tiny_encoder,
                                                                               tmp_path, capsys):
    from polyqa.cli import main
    from polyqa.locking import OutputLockedError

    out = tmp_path / "run"
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"corpus": str(small_corpus), "output_dir": str(out),
                                      "base_model": str(tiny_encoder), "batch_size": 8, "max_steps": 1,
                                      "max_seq_length": 32}))
    holder = _hold_lock_in_another_process(out, "polyqa train")
    try:
        with pytest.raises(OutputLockedError, match=f"being written by polyqa train on host .* pid {holder.pid}"):
            TrainJob(TrainConfig.from_yaml(config)).run()
        assert main(["train", "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and f"pid {holder.pid}" in err and "Traceback" not in err
        assert not (out / "model").exists() and not (out / "checkpoints").exists()
    finally:
        holder.kill()  # SIGKILL: the OS drops the lock, no stale lock file blocks the next run
        holder.wait()
    assert main(["train", "--config", str(config)]) == 0
    assert (out / "model" / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def two_checkpoints(small_corpus, tiny_encoder, tmp_path_factory) -> Path:
    """A 4-step run with checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("ckpt") / "run"
    train_retriever(_config(small_corpus, out, tiny_encoder, max_steps=4, checkpoint_steps=2, save_total_limit=None,
                            batches_per_epoch=3, record_batches=True))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    return out


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("damage, reason", [
    (lambda c: (c / "trainer_state.json").unlink(), "missing trainer_state.json"),
    (lambda c: (c / "model.safetensors").unlink(), "missing model.safetensors"),
    (lambda c: _truncate(c / "model.safetensors"), "model.safetensors is truncated or damaged"),
    (lambda c: _truncate(c / "optimizer.pt"), "optimizer.pt is truncated or damaged"),
    (lambda c: (c / "scheduler.pt").unlink(), "missing scheduler.pt"),
    (lambda c: _truncate(c / "trainer_state.json", 0.3), "trainer_state.json is not a complete trainer state"),
])
def test_a_half_written_checkpoint_is_named_skipped_and_never_trusted(two_checkpoints, small_corpus, tiny_encoder,
                                                                      tmp_path, caplog, damage, reason):
    import logging
    import shutil

    from polyqa.errors import PolyqaError
    from polyqa.train.trainer import checkpoint_problem

    out = tmp_path / "run"
    shutil.copytree(two_checkpoints / "checkpoints", out / "checkpoints")
    newest = out / "checkpoints" / "checkpoint-4"
    assert checkpoint_problem(newest) is None
    damage(newest)
    assert reason in checkpoint_problem(newest)

    config = _config(small_corpus, out, tiny_encoder, max_steps=4, checkpoint_steps=2, save_total_limit=None,
                     batches_per_epoch=3, record_batches=True, resume=True)
    with caplog.at_level(logging.WARNING, logger="polyqa.train.trainer"):
        job = TrainJob(config)
    assert job.resume_from == str(out / "checkpoints" / "checkpoint-2")
    assert any("checkpoint-4" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    with pytest.raises(PolyqaError, match="incomplete checkpoint"):
        TrainJob(_config(small_corpus, out, tiny_encoder, resume=str(newest)))
    if reason != "missing trainer_state.json":
        return  # one full resume is enough: the others only differ in the check above
    record = job.run().record
    assert record["resumed_from"].endswith("checkpoint-2") and record["global_step_start"] == 2
    # The half-written folder was set aside (kept for inspection), and step 4 saved afresh and complete.
    assert [p.name for p in (out / "checkpoints").glob("incomplete-checkpoint-4-*")]
    assert checkpoint_problem(out / "checkpoints" / "checkpoint-4") is None
    whole = json.loads((two_checkpoints / RUN_RECORD_FILE).read_text())
    assert record["batches"] == whole["batches"][2:]


KILL_SCRIPT = """
import os, sys, time
from polyqa.train import TrainConfig, TrainJob
from transformers import TrainerCallback

class HangAfterSave(TrainerCallback):
    # After the checkpoint of step 4 is complete, wait to be killed (a pre-empted machine).
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 4:
            print("saved", flush=True)
            time.sleep(300)

TrainJob(TrainConfig.from_yaml(sys.argv[1]), callbacks=[HangAfterSave()]).run()
"""


def test_training_killed_with_sigkill_resumes_with_the_uninterrupted_batch_sequence(two_checkpoints, small_corpus,
                                                                                     tiny_encoder, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from polyqa.locking import LOCK_FILE

    out = tmp_path / "run"
    settings = dict(max_steps=7, checkpoint_steps=2, save_total_limit=None, batches_per_epoch=3,
                    record_batches=True)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in vars(_config(small_corpus, out, tiny_encoder,
                                                                         **settings)).items()}))
    script = tmp_path / "train_then_hang.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(config)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "saved"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (out / LOCK_FILE).exists() and not (out / "model").exists()  # killed before the end

    # The killed run's lock went with it; resuming continues from step 4 with the same batches.
    resumed = train_retriever(_config(small_corpus, out, tiny_encoder, resume=True, **settings)).record
    whole = train_retriever(_config(small_corpus, tmp_path / "whole", tiny_encoder, **settings)).record
    assert resumed["resumed_from"].endswith("checkpoint-4") and resumed["global_step_start"] == 4
    assert resumed["batches"] == whole["batches"][4:] and len(resumed["batches"]) == 3
    first_four = json.loads((two_checkpoints / RUN_RECORD_FILE).read_text())["batches"]
    assert whole["batches"][:4] == first_four  # the sampler is a pure function of seed, epoch and batch


@pytest.mark.parametrize("setting, value, message", [
    ("batch_size", 0, "batch_size must be >= 2"),
    ("batch_size", -4, "batch_size must be >= 2"),
    ("batch_size", "32", "batch_size must be a whole number"),
    ("max_steps", 0, "max_steps must be >= 1"),
    ("epochs", 0, "epochs must be > 0"),
    ("batches_per_epoch", -1, "batches_per_epoch must be >= 1"),
    ("learning_rate", 0, "learning_rate must be > 0"),
    ("learning_rate", "fast", "learning_rate must be a number"),
    ("weight_decay", -0.1, "weight_decay must be >= 0"),
    ("warmup_steps", -1, "warmup_steps must be >= 0"),
    ("alpha", 1.5, "alpha must be <= 1"),
    ("alpha", -0.1, "alpha must be >= 0"),
    ("scale", 0, "scale must be > 0"),
    ("temperature", 0, "temperature must be > 0"),
    ("max_seq_length", 0, "max_seq_length must be >= 1"),
    ("mini_batch_size", 0, "mini_batch_size must be >= 1"),
    ("checkpoint_steps", 0, "checkpoint_steps must be >= 1"),
    ("save_total_limit", 0, "save_total_limit must be >= 1"),
    ("logging_steps", 0, "logging_steps must be >= 1"),
    ("languages_per_batch", 0, "languages_per_batch must be >= 1"),
    ("torch_threads", 0, "torch_threads must be >= 1"),
    ("heldout_fraction", 1.0, "heldout_fraction must be < 1"),
    ("heldout_fraction", 0, "heldout_fraction must be > 0"),
    ("languages", ["en", "klingon"], "languages: unknown language"),
    ("languages", ["en", "eng"], "a language is listed twice"),
    ("language_weights", {"de": 1, "xx": 2}, "language_weights: unknown language"),
    ("language_weights", {"de": -1}, r"language_weights\[de\] must be >= 0"),
    ("language_weights", "sized", "language_weights must be one of uniform, size"),
    ("strategy", "mono", "strategy must be one of x-x-mono, x-x, x-y, hybrid"),
    ("positive", "answer", "positive must be one of passage, sentence"),
    ("loss", "triplet", "loss must be one of mnrl, cached-mnrl"),
    ("precision", "fp8", "precision must be one of"),
    ("hard_negatives", "yes", "hard_negatives must be true or false"),
    ("base_model", "xlmr", "base_model: unknown model alias 'xlmr'.*did you mean xlm-r"),
    ("base_model", "./no/such/folder", "base_model: model folder not found"),
    ("exclude_titles", "Warsaw", "exclude_titles must be a list of article titles"),
])
def test_invalid_training_settings_are_refused_naming_the_setting(setting, value, message, tmp_path):
    from polyqa.errors import ConfigError

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"corpus": "c", "output_dir": "o", setting: value}))
    with pytest.raises(ConfigError, match=message) as caught:
        TrainConfig.from_yaml(path)
    assert str(path) in str(caught.value)


def test_numbers_yaml_reads_as_text_are_accepted(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("corpus: c\noutput_dir: o\nlearning_rate: 3e-5\n")  # YAML 1.1 reads 3e-5 as a string
    assert TrainConfig.from_yaml(path).learning_rate == pytest.approx(3e-5)


def test_max_seq_length_beyond_the_model_positions_is_capped(small_corpus, tiny_encoder, caplog):
    """Inputs longer than the position embeddings would crash mid-training: the length is capped, with a warning."""
    import logging

    from polyqa.train import trainer

    with caplog.at_level(logging.WARNING, logger="polyqa.train.trainer"):
        model = trainer.load_model(_config(small_corpus, "o", tiny_encoder, max_seq_length=4096))
    assert model.max_seq_length == 128 and "max_seq_length 4096 > the 128 positions" in caplog.text
    assert trainer.load_model(_config(small_corpus, "o", tiny_encoder, max_seq_length=40)).max_seq_length == 40
