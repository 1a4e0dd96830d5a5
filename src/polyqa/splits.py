"""Article splits: titles files and the seeded held-out draw that training, evaluation and the study share.

A titles file holds one article title per line (``#`` starts a comment line), or is a JSON list of
titles. Splits are by article so that no passage of a held-out article is ever trained on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path

from polyqa import paths, storage
from polyqa.errors import ConfigError, PolyqaError


def read_titles(path: str | Path) -> set[str]:
    """The titles of a titles file; errors name the file."""
    path = Path(paths.expand(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolyqaError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=str(path),
                          todo="save the titles file as UTF-8") from None
    except FileNotFoundError:
        raise PolyqaError("titles file not found", where=str(path), todo="check the path") from None
    except IsADirectoryError:
        raise PolyqaError("a folder where a titles file is expected", where=str(path),
                          todo="pass a file with one title per line") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolyqaError(f"not valid JSON (line {exc.lineno}: {exc.msg})", where=str(path)) from None
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise PolyqaError("expected a JSON list of title strings", where=str(path))
        return set(data)
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def write_titles(path: str | Path, titles: Iterable[str], header: str | None = None) -> None:
    """One title per line (sorted as given), after an optional ``# header`` line; written atomically."""
    lines = ([f"# {header}\n"] if header else []) + [f"{t}\n" for t in titles]
    storage.atomic_write_text(path, "".join(lines))


def heldout_split(titles: Iterable[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training titles, held-out titles), both sorted: ``round(n * fraction)`` (at least one) drawn with
    ``seed``. Refused when it would leave nothing to train on."""
    ordered = sorted(set(titles))
    shuffled = ordered[:]
    random.Random(seed).shuffle(shuffled)
    n_heldout = max(1, round(len(ordered) * fraction))
    if n_heldout >= len(ordered):
        raise ConfigError(f"heldout_fraction {fraction} of {len(ordered)} articles leaves none to train on",
                          todo="lower heldout_fraction")
    return sorted(shuffled[n_heldout:]), sorted(shuffled[:n_heldout])
