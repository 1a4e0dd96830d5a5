"""Where polyqa keeps things: the one place for default paths.

- ``POLYQA_HOME``: polyqa's cache home (converted models, the translation cache,
  downloaded benchmarks). Default ``~/.cache/polyqa``.
- ``POLYQA_DATA_DIR``: the folder holding the LAReQA release (``xquad-r/``,
  ``mlqa-r/``). Default: ``shared/data`` beside the checkout when it exists, else
  ``~/polyqa-data``.

Paths in configs may use ``$POLYQA_HOME`` and ``$POLYQA_DATA_DIR`` (and ``~``);
:func:`expand` resolves them with these defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

HOME_VAR = "POLYQA_HOME"
DATA_VAR = "POLYQA_DATA_DIR"

_VAR = re.compile(r"\$(?:\{(POLYQA_HOME|POLYQA_DATA_DIR)\}|(POLYQA_HOME|POLYQA_DATA_DIR)\b)")


def home() -> Path:
    """polyqa's cache home."""
    value = os.environ.get(HOME_VAR)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "polyqa"


def models_dir() -> Path:
    """Converted CTranslate2 models (and the tiny model), keyed by model, revision and quantization."""
    return home() / "models"


def translation_cache() -> Path:
    """The SQLite translation cache shared by every build and `polyqa translate`."""
    return home() / "translations.sqlite"


def benchmarks_dir() -> Path:
    """Benchmarks fetched from the hub and converted to LAReQA files."""
    return home() / "benchmarks"


def data_dir() -> Path:
    """The folder with the LAReQA release (XQuAD-R, MLQA-R)."""
    value = os.environ.get(DATA_VAR)
    if value:
        return Path(value).expanduser()
    beside_checkout = Path(__file__).resolve().parents[3] / "shared" / "data"
    return beside_checkout if beside_checkout.is_dir() else Path.home() / "polyqa-data"


def expand(path: str | os.PathLike[str]) -> str:
    """``$POLYQA_HOME``, ``$POLYQA_DATA_DIR`` (with their defaults), other variables and ``~`` expanded."""
    text = _VAR.sub(lambda m: str(home() if (m.group(1) or m.group(2)) == HOME_VAR else data_dir()), str(path))
    return os.path.expanduser(os.path.expandvars(text))
