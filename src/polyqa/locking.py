"""One writer per output: an exclusive OS file lock on a local folder, a lease on object storage.

The lock is ``fcntl.flock`` through the ``filelock`` package, so the OS drops it
when the holding process dies (a SIGKILLed build leaves no stale lock). Who
holds it (host, pid, start time, command) sits in a small file beside the lock,
written after the lock is taken, so a refused writer can name the holder.

Object stores have no file locks: an output there (``s3://``, ``gs://``) is held
with a :class:`LeaseLock`. :func:`output_lock` picks the one an output needs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from filelock import FileLock, Timeout

from polyqa import storage
from polyqa.errors import PolyqaError
from polyqa.storage import RemotePath

LOCK_FILE = ".polyqa.lock"
HOLDER_FILE = ".polyqa.lock.json"


class OutputLockedError(PolyqaError):
    """Another polyqa process is writing the same output."""


def holder_description(folder: str | Path, settle: float = 2.0) -> str:
    """Who holds the lock on ``folder``. The holder writes its details just after taking the
    lock, so a writer refused in that instant waits up to ``settle`` seconds for them."""
    path = Path(folder) / HOLDER_FILE
    deadline = time.monotonic() + settle
    while True:
        try:
            info = json.loads(path.read_text("utf-8"))
            break
        except (OSError, ValueError):
            if time.monotonic() >= deadline:
                return "another polyqa process (holder unknown)"
            time.sleep(0.05)
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
        storage.atomic_write_text(self.folder / HOLDER_FILE, json.dumps(info))
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            (self.folder / HOLDER_FILE).unlink(missing_ok=True)
            self._lock.release()

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def check(self) -> None:
        """Nothing to check: the OS keeps the lock until this process releases it or dies."""

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


# -- on object storage: a lease ---------------------------------------------------------------------

LEASE_RE = re.compile(r"^\.polyqa\.lease-(\d{8})\.json$")
LEASE_SECONDS_VAR = "POLYQA_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 120.0


def is_lock_name(name: str) -> bool:
    """True for the lock files of a local output and the lease objects of a remote one."""
    return name in (LOCK_FILE, HOLDER_FILE) or bool(LEASE_RE.match(name))


def lease_seconds() -> float:
    """How long a lease lasts without renewal (``POLYQA_LEASE_SECONDS``, default 120); renewed every quarter of it."""
    value = os.environ.get(LEASE_SECONDS_VAR, "").strip()
    if not value:
        return DEFAULT_LEASE_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 2.0 <= seconds <= 86400.0:
        raise PolyqaError(f"{LEASE_SECONDS_VAR} must be a number of seconds from 2 to 86400, not {value!r}")
    return seconds


def output_lock(folder: str | Path | RemotePath, what: str, wait: float = 0.0) -> OutputLock | LeaseLock:
    """The one-writer lock of an output: an OS file lock on a local folder, a lease on object storage."""
    folder = storage.as_path(folder)
    if isinstance(folder, RemotePath):
        return LeaseLock(folder, what, wait)
    return OutputLock(folder, what, wait)


def _machine() -> dict[str, Any]:
    """What tells this machine and process namespace apart from others (Linux; None elsewhere)."""
    def read(path: str, link: bool = False) -> str | None:
        try:
            return os.readlink(path) if link else Path(path).read_text().strip()
        except OSError:
            return None

    return {"host": socket.gethostname(), "boot_id": read("/proc/sys/kernel/random/boot_id"),
            "pid_namespace": read("/proc/self/ns/pid", link=True)}


def _process_started(pid: int) -> tuple[bool, float | None]:
    """Whether process ``pid`` runs here, and its start time (None when it cannot be read)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False, None
        return True, round(process.create_time(), 2)
    except psutil.NoSuchProcess:
        return False, None
    except psutil.AccessDenied:  # another user's process: it runs
        return True, None


class LeaseLock:
    """One writer per output on object storage: a lease object, created only if absent and renewed.

    The lease is ``<output>/.polyqa.lease-NNNNNNNN.json`` (holder: what, host, pid, start, last
    renewal, duration). Generation N+1 is created with an atomic create-if-absent (S3
    ``If-None-Match: *``): of two writers, exactly one creates it; the other reads the holder and
    refuses naming it, or waits. The holder renews its lease from a background thread every quarter
    of its duration. A lease is free when its holder released it, when it was not renewed for its
    duration (its holder died or lost the store), or at once when its holder ran on this machine
    and its process is gone. Taking a free lease is creating the next generation, so two writers
    taking over the same dead lease cannot both succeed. A holder that finds a newer generation (it
    stalled past its lease and another writer took over) stops: :meth:`check` raises before every
    manifest write.
    """

    def __init__(self, folder: RemotePath, what: str, wait: float = 0.0, seconds: float | None = None) -> None:
        self.folder = folder
        self.what = what
        self.wait = wait
        self.seconds = seconds if seconds is not None else lease_seconds()
        self.generation: int | None = None
        self._token = uuid.uuid4().hex
        self._started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed = 0.0  # time.monotonic() of the last renewal that reached the store
        self._lost: str | None = None

    def _object(self, generation: int) -> RemotePath:
        return self.folder / f".polyqa.lease-{generation:08d}.json"

    def _generations(self) -> list[int]:
        try:
            names = [p.name for p in self.folder.iterdir()]
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for name in names if (m := LEASE_RE.match(name)))

    def _read(self, generation: int) -> dict[str, Any] | None:
        """The lease's holder; None when the object is gone; ``{}`` when it cannot be read."""
        try:
            data = json.loads(self._object(generation).read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _body(self, generation: int, released: bool = False) -> bytes:
        info = {"what": self.what, **_machine(), "pid": os.getpid(), "process_started": _process_started(os.getpid())[1],
                "started": self._started, "command": " ".join(sys.argv[:3]), "generation": generation,
                "token": self._token, "renewed_unix": time.time(), "lease_seconds": self.seconds,
                "released": released}
        return json.dumps(info).encode("utf-8")

    def _free(self, holder: dict[str, Any], generation: int) -> bool:
        if holder.get("released"):
            return True
        machine = _machine()
        if holder.get("boot_id") and holder.get("pid_namespace") and all(
                holder.get(key) == machine[key] for key in ("host", "boot_id", "pid_namespace")):
            running, started = _process_started(int(holder.get("pid") or 0))
            recorded = holder.get("process_started")
            if not running or (started is not None and isinstance(recorded, (int, float))
                               and abs(started - recorded) > 1.0):  # gone, or its pid is another process's now
                return True  # its process was killed: no need to wait for the lease to run out
        renewed = holder.get("renewed_unix")
        if not isinstance(renewed, (int, float)):  # unreadable: judged by when the object was written
            try:
                modified = self._object(generation).stat().info.get("LastModified")
                renewed = modified.timestamp() if modified is not None else time.time()
            except (OSError, AttributeError):
                renewed = time.time()
        seconds = holder.get("lease_seconds")
        seconds = float(seconds) if isinstance(seconds, (int, float)) else self.seconds
        return time.time() > renewed + seconds

    def _describe(self, holder: dict[str, Any]) -> str:
        if not holder:
            return "another polyqa process (holder unknown)"
        left = float(holder.get("renewed_unix") or 0) + float(holder.get("lease_seconds") or self.seconds) - time.time()
        return (f"{holder.get('what', 'polyqa')} on host {holder.get('host')} pid {holder.get('pid')} "
                f"since {holder.get('started')} (its lease runs out {max(0, round(left))} s from now unless renewed)")

    def acquire(self) -> LeaseLock:
        storage.check_writable(self.folder)
        deadline = time.monotonic() + self.wait
        while True:
            generations = self._generations()
            top = generations[-1] if generations else -1
            holder = self._read(top) if top >= 0 else {}
            if holder is None:  # replaced while we looked: look again
                continue
            if top < 0 or self._free(holder, top):
                if self._object(top + 1).create(self._body(top + 1)):
                    self.generation = top + 1
                    break
                continue  # another writer took it first: look again
            if time.monotonic() >= deadline:
                raise OutputLockedError(
                    f"{self.folder} is being written by {self._describe(holder)}", where=str(self.folder),
                    todo="wait for it to finish (or stop it), or choose another output")
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        self._renewed = time.monotonic()
        self._refuse_unconditional_store()
        for old in (g for g in generations if g < self.generation):  # tidy: older generations are history
            self._object(old).unlink(missing_ok=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="polyqa-lease", daemon=True)
        self._thread.start()
        return self

    def _refuse_unconditional_store(self) -> None:
        """A store that ignores If-None-Match would let two writers in: it must refuse a second create."""
        if self._object(self.generation).create(self._body(self.generation)):
            self._object(self.generation).write_bytes(self._body(self.generation, released=True))
            self.generation = None
            raise PolyqaError(
                "this store accepted a second create of the same object: it ignores conditional writes "
                "(If-None-Match), so polyqa cannot keep one writer per output there", where=str(self.folder),
                todo="use a store with conditional writes (AWS S3, GCS, recent MinIO), or build into a local "
                     "folder and copy the corpus there")

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            self.renew()

    def renew(self) -> None:
        """Write a fresh renewal time into the lease, unless another writer took it over."""
        if self.generation is None or self._lost:
            return
        try:
            successor = self._read(self.generation + 1)
            if successor is not None:
                self._lost = f"another writer took the lease over: {self._describe(successor)}"
                return
            self._object(self.generation).write_bytes(self._body(self.generation))
            self._renewed = time.monotonic()
        except Exception as exc:  # noqa: BLE001 (a store error: keep trying until the lease runs out)
            if time.monotonic() - self._renewed > self.seconds:
                self._lost = f"the lease could not be renewed for {self.seconds:g} s ({exc})"

    def check(self) -> None:
        """Raise unless this process still holds the lease (called before each manifest write)."""
        if self.generation is None:
            raise OutputLockedError("the output's lease is not held", where=str(self.folder))
        if not self._lost:
            successor = self._read(self.generation + 1)
            if successor is not None:
                self._lost = f"another writer took the lease over: {self._describe(successor)}"
        if not self._lost and time.monotonic() - self._renewed > self.seconds:
            self._lost = f"the lease was not renewed for {self.seconds:g} s (this process stalled or lost the store)"
        if self._lost:
            raise OutputLockedError(f"this build no longer holds {self.folder}: {self._lost}", where=str(self.folder),
                                    todo="rerun the build once the other writer is done (it resumes)")

    def release(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self.generation is not None:
            if not self._lost and self._read(self.generation + 1) is None:
                self._object(self.generation).write_bytes(self._body(self.generation, released=True))
            self.generation = None

    @property
    def held(self) -> bool:
        return self.generation is not None and not self._lost

    def __enter__(self) -> LeaseLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
