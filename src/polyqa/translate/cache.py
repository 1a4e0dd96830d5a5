"""A persistent translation cache shared by processes: SQLite in WAL mode.

Each entry is keyed by sha256(key_prefix, text), where the engine's key prefix
names the model fingerprint, the decoding settings and the language pair. A
rerun, or a new corpus sharing text with an old one, looks its segments up here
before translating anything.

Several processes may read and write at once: WAL lets readers work while one
writer commits, the busy timeout makes writers wait for each other instead of
failing, and inserts are batched in one transaction per ``put_many``.

The cache is never trusted blindly: a file that is not a SQLite database, or
fails SQLite's integrity check, is set aside (renamed, never deleted) and a new
cache is started, with a warning; an entry whose checksum does not match its
text is dropped and translated again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from datetime import datetime, timezone
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    key BLOB PRIMARY KEY,
    translation TEXT NOT NULL,
    digest BLOB
) WITHOUT ROWID
"""
# SQLite's default limit on host parameters is 32766 in recent versions, 999 in old ones.
_CHUNK = 900


def entry_key(key_prefix: str, text: str) -> bytes:
    return hashlib.sha256(f"{key_prefix}\x00{text}".encode()).digest()


def entry_digest(key: bytes, translation: str) -> bytes:
    """Checksum of an entry: a damaged translation (or one under the wrong key) is detected on read."""
    return hashlib.sha256(key + translation.encode("utf-8", "surrogatepass")).digest()[:8]


class CacheDamagedWarning(UserWarning):
    """The translation cache file was damaged and has been set aside."""


class TranslationCache:
    """Text -> translation, per key prefix, in one SQLite file."""

    def __init__(self, path: str | os.PathLike, *, busy_timeout_s: float = 120.0):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self.set_aside: Path | None = None  # where a damaged cache file was moved, if it was
        self.damaged_entries = 0
        try:
            self._connection()
            self._check_integrity()
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                raise
            self._set_aside(exc)
            self._connection()

    def _check_integrity(self) -> None:
        with self._lock:
            result = self._connection().execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {result}")

    def _set_aside(self, exc: Exception) -> None:
        """Move a damaged cache (and its WAL files) out of the way, keeping it for inspection."""
        import warnings

        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
        self._conn = None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                os.replace(source, Path(f"{target}{suffix}"))
        self.set_aside = target
        message = (f"translation cache {self.path} is damaged ({exc}); moved to {target} and starting a new "
                   "cache: segments it held will be translated again")
        log.warning(message)
        warnings.warn(message, CacheDamagedWarning, stacklevel=3)

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork: reopen in a child process.
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            self._retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
            self._retry(lambda: conn.execute(_SCHEMA))
            columns = {row[1] for row in conn.execute("PRAGMA table_info(translations)")}
            if "digest" not in columns:  # caches written before entries had checksums
                self._retry(lambda: conn.execute("ALTER TABLE translations ADD COLUMN digest BLOB"))
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _retry(self, action, attempts: int = 20):
        # busy_timeout covers most contention; WAL switch and schema creation can
        # still report "locked" when many processes open the file at once.
        for attempt in range(attempts):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def get_many(self, key_prefix: str, texts: Sequence[str]) -> dict[str, str]:
        """Translations of the ``texts`` that are cached under ``key_prefix``."""
        keys = {entry_key(key_prefix, t): t for t in dict.fromkeys(texts)}
        found: dict[str, str] = {}
        damaged: list[bytes] = []
        items = list(keys)
        with self._lock:
            conn = self._connection()
            for i in range(0, len(items), _CHUNK):
                chunk = items[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._retry(
                    lambda: conn.execute(
                        f"SELECT key, translation, digest FROM translations WHERE key IN ({marks})", chunk
                    ).fetchall()
                )
                for key, translation, digest in rows:
                    key = bytes(key)
                    if not isinstance(translation, str) or (
                            digest is not None and bytes(digest) != entry_digest(key, translation)):
                        damaged.append(key)
                        continue
                    found[keys[key]] = translation
            if damaged:
                # Dropped, so the caller translates these again and stores good entries.
                self._retry(lambda: conn.executemany("DELETE FROM translations WHERE key = ?",
                                                     [(k,) for k in damaged]))
        if damaged:
            self.damaged_entries += len(damaged)
            log.warning("translation cache %s: %d damaged entries dropped; they are translated again",
                        self.path, len(damaged))
        return found

    def put_many(self, key_prefix: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Store (text, translation) pairs in one transaction; existing entries are kept."""
        rows = []
        for text, translation in pairs:
            key = entry_key(key_prefix, text)
            rows.append((key, translation, entry_digest(key, translation)))
        if not rows:
            return
        with self._lock:
            conn = self._connection()

            def write():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR IGNORE INTO translations (key, translation, digest) VALUES (?, ?, ?)", rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

            self._retry(write)

    def __len__(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> TranslationCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):  # picklable for Dask/Prefect workers: reopen on the other side
        return {"path": self.path, "busy_timeout_s": self._busy_timeout_s}

    def __setstate__(self, state):
        self.__init__(state["path"], busy_timeout_s=state["busy_timeout_s"])

    def __repr__(self) -> str:
        return f"TranslationCache({str(self.path)!r})"
