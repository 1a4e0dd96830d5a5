"""Session fixtures for the translation engine (registered in conftest via ``pytest_plugins``)."""

from __future__ import annotations

import pytest

from polyqa.translate.tiny import TinyModel, build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """The tiny random NLLB model (HF folder + float32 CTranslate2 folder), built once per session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0, quantization="float32")
