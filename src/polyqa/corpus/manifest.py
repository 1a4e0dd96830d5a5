"""``manifest.json``: what a corpus holds and how it was made; the record of finished shards.

A shard counts only once the manifest lists it with its sha256. The manifest is
rewritten atomically after every shard, so a killed build resumes from it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from polyqa import __version__
from polyqa.corpus.schema import SCHEMA_VERSION
from polyqa.corpus.writer import WrittenShard, atomic_write_bytes, sha256_file

MANIFEST_FILE = "manifest.json"


def code_version() -> dict[str, Any]:
    """polyqa's version and, when run from a git checkout, its commit (and whether it is dirty)."""
    info: dict[str, Any] = {"polyqa": __version__, "git_commit": None, "git_dirty": None}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10)
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                    capture_output=True, text=True, timeout=10)
            info["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


class Manifest:
    """A thin wrapper over the manifest's JSON object."""

    def __init__(self, data: dict[str, Any] | None = None):
        self.data: dict[str, Any] = data or {}
        self.data.setdefault("schema_version", SCHEMA_VERSION)
        self.data.setdefault("shards", [])

    # -- file -----------------------------------------------------------------
    @classmethod
    def load(cls, corpus_dir: str | Path) -> Manifest | None:
        path = Path(corpus_dir) / MANIFEST_FILE
        if not path.exists():
            return None
        try:
            return cls(json.loads(path.read_text("utf-8")))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None

    def save(self, corpus_dir: str | Path) -> None:
        text = json.dumps(self.data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        atomic_write_bytes(Path(corpus_dir) / MANIFEST_FILE, text.encode("utf-8"))

    # -- shards ---------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    @property
    def shards(self) -> list[dict[str, Any]]:
        return self.data["shards"]

    def shard(self, lang: str, index: int) -> dict[str, Any] | None:
        for entry in self.shards:
            if entry["lang"] == lang and entry["index"] == index:
                return entry
        return None

    def add_shard(self, written: WrittenShard | dict[str, Any], **extra: Any) -> None:
        entry = {**(written.as_dict() if isinstance(written, WrittenShard) else dict(written)), **extra}
        self.data["shards"] = [e for e in self.shards
                               if not (e["lang"] == entry["lang"] and e["index"] == entry["index"])]
        self.shards.append(entry)
        self.shards.sort(key=lambda e: (e["lang"], e["index"]))

    def verified(self, corpus_dir: str | Path, lang: str, index: int) -> bool:
        """True when the manifest lists this shard and the file's sha256 matches."""
        entry = self.shard(lang, index)
        if entry is None:
            return False
        path = Path(corpus_dir) / entry["path"]
        return path.exists() and path.stat().st_size == entry.get("bytes", path.stat().st_size) \
            and sha256_file(path) == entry["sha256"]

    def entries_for(self, lang: str) -> list[dict[str, Any]]:
        return [e for e in self.shards if e["lang"] == lang]

    def rows_per_language(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.shards:
            out[e["lang"]] = out.get(e["lang"], 0) + int(e["rows"])
        return out

    def missing(self, languages: Iterable[str], n_shards: int) -> list[tuple[str, int]]:
        have = {(e["lang"], e["index"]) for e in self.shards}
        return [(lang, k) for lang in languages for k in range(n_shards) if (lang, k) not in have]
