"""One writer per output: an exclusive OS file lock on a folder polyqa writes.

The lock is ``fcntl.flock`` through the ``filelock`` package, so the OS drops it
when the holding process dies (a SIGKILLed build leaves no stale lock). Who
holds it (host, pid, start time, command) sits in a small file beside the lock,
written after the lock is taken, so a refused writer can name the holder.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from polyqa.errors import PolyqaError

LOCK_FILE = ".polyqa.lock"
HOLDER_FILE = ".polyqa.lock.json"


class OutputLockedError(PolyqaError):
    """Another polyqa process is writing the same output."""


def holder_description(folder: str | Path) -> str:
    path = Path(folder) / HOLDER_FILE
    try:
        info = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return "another polyqa process (holder unknown)"
    return (f"{info.get('what', 'polyqa')} on host {info.get('host')} pid {info.get('pid')} "
            f"since {info.get('started')}")


class OutputLock:
    """Exclusive lock on ``folder`` for one writer; ``wait`` seconds before refusing (0: refuse at once)."""

    def __init__(self, folder: str | Path, what: str, wait: float = 0.0) -> None:
        self.folder = Path(folder)
        self.what = what
        self.wait = wait
        self._lock = FileLock(str(self.folder / LOCK_FILE), timeout=wait)

    def acquire(self) -> OutputLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise OutputLockedError(
                f"{self.folder} is being written by {holder_description(self.folder)}",
                where=str(self.folder),
                todo="wait for it to finish (or stop it), or choose another output") from None
        info = {"what": self.what, "host": socket.gethostname(), "pid": os.getpid(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv[:3]), "acquired_unix": time.time()}
        tmp = self.folder / f".{HOLDER_FILE}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(info), "utf-8")
        os.replace(tmp, self.folder / HOLDER_FILE)
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            (self.folder / HOLDER_FILE).unlink(missing_ok=True)
            self._lock.release()

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
