"""What polyqa owns in a corpus output folder, and the only deletions it makes there.

polyqa marks a folder it creates (or one it is allowed into) with ``.polyqa-corpus.json``.
It deletes only files it can prove it wrote: the manifest, shard files, the quarantine,
``_work/``, its temporary files, and ``README.md`` only while it is byte for byte a card
polyqa wrote (the marker keeps the cards' checksums). A non-empty folder without the
marker is refused unless the build is allowed beside its files; ``overwrite`` is refused
there too. A manifest that cannot be read is set aside, never deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from polyqa import __version__, storage
from polyqa.corpus.ingest import WORK_DIR
from polyqa.corpus.manifest import MANIFEST_FILE, Manifest
from polyqa.corpus.reader import SHARD_RE
from polyqa.corpus.validate import manifest_problem
from polyqa.corpus.writer import QUARANTINE_FILE, TEMPORARY_RE, temporary_files
from polyqa.errors import PolyqaError
from polyqa.locking import HOLDER_FILE, LOCK_FILE, is_lock_name
from polyqa.storage import AnyPath, atomic_write_bytes

Log = Callable[[str], None]


class CorpusConflictError(PolyqaError):
    """The output folder holds another corpus, or files that are not polyqa's."""


class ManifestDamagedWarning(UserWarning):
    """The manifest could not be read; it was set aside and the corpus is built again."""


MARKER_FILE = ".polyqa-corpus.json"  # written when polyqa creates (or is allowed into) a folder
CARD_FILE = "README.md"
LOCK_NAMES = (LOCK_FILE, HOLDER_FILE)
# Names a build writes at the top of the folder; a folder polyqa is allowed into must not hold them.
CORPUS_NAMES = (MANIFEST_FILE, QUARANTINE_FILE, CARD_FILE, WORK_DIR)


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stamp() -> str:
    return f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}"


def names(paths_: list[AnyPath], limit: int = 5) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in paths_)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def read_marker(output: AnyPath) -> dict[str, Any] | None:
    """The folder's polyqa marker; None when there is none (a damaged one still proves the folder is polyqa's)."""
    try:
        data = json.loads((output / MARKER_FILE).read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_marker(output: AnyPath, marker: Mapping[str, Any]) -> None:
    atomic_write_bytes(output / MARKER_FILE, (json.dumps(marker, indent=2) + "\n").encode("utf-8"))


def refuse_foreign(output: AnyPath, *, overwrite: bool, allow_non_empty: bool) -> list[AnyPath] | None:
    """None for a folder polyqa made; else the files in it, after refusing what may not be done there."""
    if read_marker(output) is not None:
        return None
    # Lock files and polyqa's temporary files (of a build that just started, or died) are not the user's.
    others = [p for p in output.iterdir() if not is_lock_name(p.name) and not TEMPORARY_RE.match(p.name)]
    if any(p.name == MARKER_FILE for p in others):  # written since we looked (a build starting right now)
        return None
    if others and overwrite and not allow_non_empty:
        raise CorpusConflictError(
            f"--overwrite deletes only a corpus polyqa created, and polyqa did not create this folder: it holds "
            f"{names(others)}; not deleting anything", where=str(output),
            todo="choose another --output, or empty the folder yourself")
    if others and not allow_non_empty:
        raise CorpusConflictError(
            f"the output folder is not empty and polyqa did not create it: it holds {names(others)}",
            where=str(output),
            todo="choose a new or empty folder, or pass --allow-non-empty to build beside these files")
    clashes = [p for p in others if p.name in CORPUS_NAMES or p.name.startswith("lang=")]
    if clashes:
        raise CorpusConflictError(
            f"the output folder holds files under names a corpus uses ({names(clashes)}), which a build would "
            "overwrite", where=str(output), todo="move them elsewhere, or choose another --output")
    return others


def claim_output(output: AnyPath, *, overwrite: bool, allow_non_empty: bool, log: Log) -> dict[str, Any]:
    """The folder's marker, writing one when polyqa may use the folder; refuses folders that are not polyqa's."""
    others = refuse_foreign(output, overwrite=overwrite, allow_non_empty=allow_non_empty)
    if others is None:
        return read_marker(output) or {}
    marker = {"polyqa": __version__, "created": now_utc(), "beside": sorted(p.name for p in others)[:20]}
    write_marker(output, marker)
    if others:
        log(f"{output}: building beside {len(others)} files that are not polyqa's ({names(others)}); "
            "they are never touched")
    return marker


def remember_card(output: str | Path, marker: dict[str, Any] | None = None) -> None:
    """Record README.md, as it is now, as a card polyqa wrote (a build replaces or removes only those)."""
    output = storage.as_path(output)
    marker = marker if marker is not None else (read_marker(output) or {"polyqa": __version__, "created": None})
    sha256 = hashlib.sha256((output / CARD_FILE).read_bytes()).hexdigest()
    marker["cards"] = [*(c for c in marker.get("cards") or [] if c != sha256), sha256][-10:]
    write_marker(output, marker)


def own_card(output: AnyPath, marker: Mapping[str, Any]) -> bool:
    """True when README.md is byte for byte a card polyqa wrote here."""
    card = output / CARD_FILE
    if not card.is_file():
        return False
    return hashlib.sha256(card.read_bytes()).hexdigest() in (marker.get("cards") or [])


def remove_temporary(output: AnyPath, log: Log) -> None:
    found = temporary_files(output)
    for path in found:
        path.unlink(missing_ok=True)
    if found:
        log(f"{output}: removed {len(found)} temporary files of an interrupted build ({names(found)})")


def shard_files(output: AnyPath) -> list[AnyPath]:
    """Every file named like a shard in the folder's lang= partitions."""
    return sorted(p for d in output.glob("lang=*") if d.is_dir() for p in d.iterdir()
                  if SHARD_RE.match(p.name) and p.is_file())


def unlisted_shards(output: AnyPath, manifest: Manifest) -> list[AnyPath]:
    listed = {(output / e["path"]).resolve() for e in manifest.shards}
    return [p for p in shard_files(output) if p.resolve() not in listed]


def remove_shard_files(output: AnyPath, files: list[AnyPath]) -> None:
    for path in files:
        path.unlink(missing_ok=True)
    for folder in {path.parent for path in files}:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def remove_own_files(output: AnyPath, marker: Mapping[str, Any], log: Log, *, keep_store: bool = False) -> None:
    """Delete the corpus polyqa wrote here (for ``overwrite`` or a refresh); every other file stays.

    ``keep_store`` (a refresh) keeps the translation store, whose translations the rebuild reuses.
    """
    from polyqa.corpus.translations import STORE_DIR, store_parts

    removed = [p for p in (output / MANIFEST_FILE, output / QUARANTINE_FILE) if p.is_file()]
    if own_card(output, marker):
        removed.append(output / CARD_FILE)
    for path in removed:
        path.unlink()
    shards = shard_files(output)
    remove_shard_files(output, shards)
    store = [] if keep_store else store_parts(output)
    remove_shard_files(output, store)
    if not keep_store and (output / STORE_DIR).is_dir() and not any((output / STORE_DIR).iterdir()):
        (output / STORE_DIR).rmdir()
    if (output / WORK_DIR).is_dir():
        storage.rmtree(output / WORK_DIR)
    kept = [p for p in output.iterdir() if not is_lock_name(p.name) and p.name not in (MARKER_FILE, STORE_DIR)]
    log(f"{output}: removed the previous corpus ({len(removed) + len(shards)} files)"
        + (f"; kept {len(kept)} that polyqa did not write ({names(kept)})" if kept else "")
        + (f"; removed its translation store ({len(store)} files)" if store else "")
        + ("; kept its translation store for the rebuild" if keep_store and store_parts(output) else ""))


def load_manifest(output: AnyPath, log: Log) -> Manifest | None:
    """The manifest, or None; one that cannot be read is set aside (renamed, never deleted) with a warning."""
    try:
        manifest = Manifest.load(output)
        problem = manifest_problem(manifest) if manifest is not None else None
    except ValueError as exc:
        problem = str(exc)
    if problem is None:
        return manifest
    target = output / f"{MANIFEST_FILE}.damaged-{stamp()}"
    storage.move(output / MANIFEST_FILE, target)
    message = (f"{output / MANIFEST_FILE} is damaged ({problem}); moved to {target.name} and building the "
               "corpus again (translations come from the cache)")
    log(message)
    warnings.warn(message, ManifestDamagedWarning, stacklevel=3)
    return None
