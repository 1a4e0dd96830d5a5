"""Nothing is unpickled from user paths: models load from safetensors only, remote code only when a
config opts in, the embedding cache is read with allow_pickle=False."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from polyqa.cli import main as polyqa_main
from polyqa.encoders import check_model_name, load_sentence_transformer
from polyqa.errors import ConfigError, PolyqaError

SRC = Path(__file__).resolve().parents[1] / "src"
FLOWS = Path(__file__).resolve().parents[1] / "flows"


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    from polyqa.tiny_encoder import build_tiny_encoder

    return build_tiny_encoder(["a river runs through the city", "the city has a bridge"] * 5,
                              tmp_path_factory.mktemp("enc"), vocab_size=60, hidden_size=8, layers=1, heads=1)


@pytest.fixture(scope="module")
def pickled_model_dir(encoder_dir, tmp_path_factory) -> Path:
    """The same model with its weights saved as pytorch_model.bin (a pickle) instead of safetensors."""
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path_factory.mktemp("pickled") / "model"
    shutil.copytree(encoder_dir, folder)
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(weights, folder / "pytorch_model.bin")
    return folder


def test_a_model_folder_with_only_pickled_weights_is_refused(pickled_model_dir, tmp_path, capsys):
    with pytest.raises(PolyqaError, match=r"pickle files \(pytorch_model\.bin\).*safetensors only"):
        load_sentence_transformer(str(pickled_model_dir))
    with pytest.raises(ConfigError, match="base_model: the model's weights are pickle files"):
        from polyqa.train import TrainConfig

        TrainConfig(corpus="c", output_dir="o", base_model=str(pickled_model_dir))
    code = polyqa_main(["evaluate", "--model", str(pickled_model_dir), "--benchmark", "mlqa-r",
                        "--output", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: model: the model's weights are pickle files")
    assert "convert them to model.safetensors" in err and "Traceback" not in err


def test_folders_that_are_not_models_are_named(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(PolyqaError, match="a file where a model folder is expected"):
        check_model_name(str(tmp_path / "notes.txt"))
    with pytest.raises(PolyqaError, match=r"not a model folder \(no config.json or modules.json\)"):
        check_model_name(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(PolyqaError, match=r"no model weights \(\*\.safetensors\)"):
        check_model_name(str(tmp_path))
    with pytest.raises(ConfigError, match="model folder not found"):
        check_model_name(str(tmp_path / "missing" / "model"))
    with pytest.raises(ConfigError, match="unknown model alias 'xlmr'.*did you mean xlm-r"):
        check_model_name("xlmr")
    check_model_name("minilm")
    check_model_name("some-org/some-model")  # a hub id: only loading can tell


def test_models_load_with_safetensors_only_and_remote_code_off_unless_asked(encoder_dir, monkeypatch):
    import sentence_transformers

    calls = []
    real = sentence_transformers.SentenceTransformer

    def spy(name, **kwargs):
        calls.append(kwargs)
        return real(name, **kwargs)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", spy)
    model = load_sentence_transformer(str(encoder_dir), device="cpu")
    assert model.encode(["a river"]).shape == (1, 8)
    assert calls[-1]["model_kwargs"] == {"use_safetensors": True} and calls[-1]["trust_remote_code"] is False

    from polyqa.evaluate.retrieval import load_encoder
    from polyqa.train import TrainConfig, trainer

    load_encoder(str(encoder_dir), trust_remote_code=True)
    assert calls[-1]["trust_remote_code"] is True
    trainer.load_model(TrainConfig(corpus="c", output_dir="o", base_model=str(encoder_dir)))
    assert calls[-1]["trust_remote_code"] is False and calls[-1]["model_kwargs"] == {"use_safetensors": True}
    trainer.load_model(TrainConfig(corpus="c", output_dir="o", base_model=str(encoder_dir), trust_remote_code=True))
    assert calls[-1]["trust_remote_code"] is True
    with pytest.raises(ConfigError, match="trust_remote_code must be true or false"):
        TrainConfig(corpus="c", output_dir="o", trust_remote_code="yes")


def test_a_hub_id_that_cannot_be_loaded_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PolyqaError, match="cannot load model 'no-such-org/no-such-model'.*tried the Hugging Face hub"):
        load_sentence_transformer("no-such-org/no-such-model")


def test_embedding_cache_blocks_are_never_unpickled(tmp_path, caplog):
    from polyqa.evaluate.retrieval import Encoder

    class Model:
        tokenizer = None

        def encode(self, texts, **_):
            return np.ones((len(texts), 3), dtype=np.float32)

    encoder = Encoder(Model(), "m", cache_dir=tmp_path)
    encoder.encode(["a", "b"])
    [block] = list(tmp_path.glob("emb-*.npy"))
    # A block replaced by a pickled object array (what a malicious file would hold) is not loaded.
    np.save(block, np.array([{"evil": 1}, {"evil": 2}], dtype=object), allow_pickle=True)
    again = Encoder(Model(), "m", cache_dir=tmp_path)
    assert again.encode(["a", "b"]).shape == (2, 3)
    assert again.stats.from_cache == 0 and "encoding it again" in caplog.text
    block.write_bytes(b"\x93NUMPY truncated")
    assert Encoder(Model(), "m", cache_dir=tmp_path).encode(["a", "b"]).shape == (2, 3)


def test_no_pickle_loading_anywhere_in_polyqa():
    """torch.load / pickle.load / np.load without allow_pickle=False never appear in polyqa's code."""
    offenders = []
    for path in [*SRC.rglob("*.py"), *FLOWS.rglob("*.py")]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\b(torch\.load|pickle\.loads?|joblib\.load|cloudpickle)\s*\(", line):
                offenders.append(f"{path}:{n}: {line.strip()}")
            if re.search(r"\bnp\.load\(", line) and "allow_pickle=False" not in line:
                offenders.append(f"{path}:{n}: {line.strip()}")
    assert offenders == []
