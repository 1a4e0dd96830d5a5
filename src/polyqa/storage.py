"""Where corpora live: local folders, and any fsspec URL (``s3://``, ``gs://``, ``hf://``, ``file://``, ...).

:func:`as_path` turns what a user passed (``--output``, a training ``corpus``, an
evaluation ``data_dir``) into a :class:`pathlib.Path` for a local folder (and for
``file://`` URLs, so they get exactly the local behaviour: ``flock``, fsync and
``os.replace``) or into a :class:`RemotePath` for everything else. A
:class:`RemotePath` has the few :class:`pathlib.Path` methods polyqa's corpus
code uses (``/``, ``name``, ``exists``, ``iterdir``, ``glob``, ``read_bytes``,
``unlink``...) over the URL's fsspec filesystem, so the same code reads and
writes both. It has no ``__fspath__``: handing one to ``open()`` or
``os.replace`` fails at once instead of writing a local folder named ``s3:``.

The filesystem comes from ``fsspec.core.url_to_fs`` with the settings users of
s3fs, gcsfs and ``huggingface_hub`` already have: the environment
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ...), fsspec's
configuration (``FSSPEC_S3_ENDPOINT_URL``, ``~/.config/fsspec/``), the tool's own
credential files. Listings are never cached: other machines write the same prefix.

Writing (a corpus build) needs two things of a store, and polyqa writes only to
stores that have both (:func:`check_writable`):

- a file appears whole or not at all: one PUT (or a multipart upload, which also
  appears only when completed) on object stores, so polyqa writes each file to a
  local temporary file and uploads it in one call (:func:`put_file`); readers never
  see half a shard;
- an atomic create-if-absent (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``),
  which the output's lease (:class:`polyqa.locking.LeaseLock`) is built on.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, Union

URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# Stores where a PUT replaces an object atomically (readers see the old or the new bytes, never a part)
# and that offer an atomic create-if-absent through fsspec's ``mode="create"``.
WRITABLE_PROTOCOLS = {"s3": "S3", "s3a": "S3", "gs": "Google Cloud Storage", "gcs": "Google Cloud Storage"}
# Object stores: folders are prefixes (nothing to create or remove).
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "hf"}


def as_path(value: str | os.PathLike[str] | RemotePath) -> Path | RemotePath:
    """A local :class:`Path` (``file://`` URLs too), or a :class:`RemotePath` for any other URL."""
    if isinstance(value, (Path, RemotePath)):
        return value
    text = os.fspath(value)
    match = URL_RE.match(text)
    if not match:
        return Path(text)
    if match.group(1).lower() == "file":
        from fsspec.implementations.local import LocalFileSystem

        return Path(LocalFileSystem._strip_protocol(text))
    return RemotePath.from_url(text)


def display(value: str | os.PathLike[str] | RemotePath) -> str:
    """The location as a user should see it: a URL as given, a local path made absolute."""
    path = as_path(value)
    return str(path) if isinstance(path, RemotePath) else str(path.resolve())


def filesystem(url: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path without protocol)`` for a URL; listings are not cached."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, use_listings_cache=False)
    except TypeError:  # a filesystem that takes no listing-cache option
        return fsspec.core.url_to_fs(url)


class RemotePath:
    """A file or folder on an fsspec filesystem with the :class:`pathlib.Path` methods polyqa uses."""

    __slots__ = ("fs", "path", "protocol", "_kind")

    def __init__(self, fs: Any, path: str, protocol: str, kind: str | None = None) -> None:
        self.fs = fs
        self.path = path.rstrip("/") or path
        self.protocol = protocol
        self._kind = kind  # "file" or "directory" when known from the listing that found it

    @classmethod
    def from_url(cls, url: str) -> RemotePath:
        fs, path = filesystem(url)
        return cls(fs, path, URL_RE.match(url).group(1))

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Sent to another process (a Dask worker) as its URL: the worker makes its own filesystem.
        return RemotePath.from_url, (str(self),)

    # -- names ------------------------------------------------------------------------------
    def __str__(self) -> str:
        return f"{self.protocol}://{self.path}"

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __lt__(self, other: RemotePath) -> bool:
        return str(self) < str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __truediv__(self, other: str | os.PathLike[str]) -> RemotePath:
        return RemotePath(self.fs, posixpath.join(self.path, os.fspath(other)), self.protocol)

    def _child(self, path: str, kind: str | None = None) -> RemotePath:
        return RemotePath(self.fs, path, self.protocol, kind)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem

    @property
    def parent(self) -> RemotePath:
        return self._child(posixpath.dirname(self.path))

    @property
    def bucket(self) -> RemotePath:
        """The top of the path (a bucket on object stores)."""
        return self._child(self.path.split("/", 1)[0])

    def with_name(self, name: str) -> RemotePath:
        return self.parent / name

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        return PurePosixPath(self.path).relative_to(other.path)

    def is_relative_to(self, other: RemotePath) -> bool:
        return isinstance(other, RemotePath) and PurePosixPath(self.path).is_relative_to(other.path)

    def resolve(self) -> RemotePath:
        return self

    def as_posix(self) -> str:
        return str(self)

    @property
    def object_store(self) -> bool:
        return self.protocol.lower() in OBJECT_STORES

    # -- queries ------------------------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        return self._kind == "file" if self._kind else bool(self.fs.isfile(self.path))

    def is_dir(self) -> bool:
        return self._kind == "directory" if self._kind else bool(self.fs.isdir(self.path))

    def stat(self) -> SimpleNamespace:
        info = self.fs.info(self.path)
        return SimpleNamespace(st_size=int(info.get("size") or 0), info=info)

    def _entries(self, infos: list[dict[str, Any]]) -> list[RemotePath]:
        out = []
        for info in infos:
            name = info["name"].rstrip("/")
            if name == self.path:
                continue
            out.append(self._child(name, "directory" if info.get("type") == "directory" else "file"))
        return out

    def iterdir(self) -> Iterator[RemotePath]:
        return iter(self._entries(self.fs.ls(self.path, detail=True)))

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        found = self.fs.glob(posixpath.join(self.path, pattern), detail=True)
        return iter(self._entries(list(found.values()) if isinstance(found, dict) else
                                  [{"name": name} for name in found]))

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)

    def open(self, mode: str = "rb", **kwargs: Any) -> Any:
        return self.fs.open(self.path, mode, **kwargs)

    # -- changes ------------------------------------------------------------------------------
    def write_bytes(self, data: bytes) -> None:
        """One PUT: on an object store the object appears whole or not at all."""
        with named(self):
            self.fs.pipe_file(self.path, data)

    def create(self, data: bytes) -> bool:
        """Create the object only if it does not exist (atomic on S3 and GCS); False when it does."""
        try:
            self.fs.pipe_file(self.path, data, mode="create")
        except FileExistsError:
            return False
        except OSError as exc:  # S3's answer to two conditional writes of one key at the same moment
            if "ConditionalRequestConflict" in str(exc):
                return False
            raise naming(exc, self) from exc
        return True

    def unlink(self, missing_ok: bool = False) -> None:
        if not missing_ok and not self.fs.exists(self.path):
            raise FileNotFoundError(str(self))
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        if not self.object_store:  # object stores have no folders: a prefix exists once an object has it
            self.fs.makedirs(self.path, exist_ok=True)

    def rmdir(self) -> None:
        if not self.object_store:
            self.fs.rmdir(self.path)


AnyPath = Union[Path, RemotePath]

# The error numbers of errors raised without one (s3fs says PermissionError("Access Denied")).
_ERRNO = {PermissionError: errno.EACCES, FileNotFoundError: errno.ENOENT, FileExistsError: errno.EEXIST,
          IsADirectoryError: errno.EISDIR, NotADirectoryError: errno.ENOTDIR, TimeoutError: errno.ETIMEDOUT}


def naming(exc: OSError, path: object) -> OSError:
    """``exc`` naming ``path``: writers (pyarrow) and stores (s3fs) say what failed but not where."""
    if exc.filename is not None:
        return exc
    code = exc.errno if exc.errno is not None else _ERRNO.get(type(exc), errno.EIO)
    return OSError(code, exc.strerror or str(exc) or os.strerror(code), str(path))  # OSError picks the subclass


@contextmanager
def named(path: object) -> Iterator[None]:
    """Raise any OSError of the block as one naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise naming(exc, path) from exc


# -- operations with a local and a remote way ------------------------------------------------------

_SPOOL_TIDIED: set[Path] = set()


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path`` for writing it before the atomic rename (unique per process and call)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_file(path: str | os.PathLike[str] | RemotePath) -> Iterator[Path]:
    """A local temporary file to write ``path`` through: whole under its name on success, gone on failure.

    Locally the file is fsynced and renamed over ``path``; on a store it is uploaded in one PUT.
    For writers that want a file name (pyarrow, parquet); :func:`atomic_write_bytes` for bytes.
    """
    path = as_path(path)
    remote = isinstance(path, RemotePath)
    if not remote:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = spool_file(path) if remote else temporary_name(path)
    try:
        yield tmp
        if remote:
            put_file(tmp, path)
        else:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except OSError as exc:
        raise naming(exc, path) from exc
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str] | RemotePath, data: bytes) -> None:
    """Write a whole file or nothing: temporary name, fsync, rename (one PUT on a store)."""
    path = as_path(path)
    if isinstance(path, RemotePath):
        path.write_bytes(data)  # one PUT: the object appears whole or not at all
        return
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str] | RemotePath, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def spool_dir() -> Path:
    """This user's folder of local files on their way to a store (``$TMPDIR/polyqa-spool-<uid>``).

    Files there are named ``<pid>-...``; those of processes that no longer run (a killed build)
    are removed the first time a process of this user needs the folder.
    """
    folder = Path(tempfile.gettempdir()) / f"polyqa-spool-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder not in _SPOOL_TIDIED:
        _SPOOL_TIDIED.add(folder)
        import psutil

        for path in folder.iterdir():
            pid = path.name.split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
                path.unlink(missing_ok=True)
    return folder


def spool_file(target: RemotePath) -> Path:
    """A new local temporary file to write ``target``'s bytes into before :func:`put_file`."""
    fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-{target.name}.", suffix=".tmp", dir=spool_dir())
    os.close(fd)
    return Path(name)


def put_file(local: Path, target: RemotePath) -> None:
    """Upload a finished local file as ``target`` (one PUT, or a multipart upload that appears on completion)."""
    with named(target):
        target.fs.put_file(str(local), target.path)


def move(source: AnyPath, target: AnyPath) -> None:
    """``os.replace`` locally; copy then delete on a store (the copy exists before the original goes)."""
    if isinstance(source, RemotePath):
        with named(target):
            source.fs.copy(source.path, target.path)
        with named(source):
            source.fs.rm_file(source.path)
    else:
        os.replace(source, target)


def rmtree(folder: AnyPath, ignore_errors: bool = False) -> None:
    """Remove a folder polyqa owns (its staging area) and everything in it."""
    if isinstance(folder, RemotePath):
        try:
            if folder.exists():
                folder.fs.rm(folder.path, recursive=True)
        except OSError:
            if not ignore_errors:
                raise
    else:
        shutil.rmtree(folder, ignore_errors=ignore_errors)


def arrow_source(files: list[AnyPath]) -> tuple[list[str], Any]:
    """``(paths, filesystem)`` for ``pyarrow.dataset.dataset``: remote files go through their fsspec filesystem."""
    if files and isinstance(files[0], RemotePath):
        return [f.path for f in files], files[0].fs
    return [str(f) for f in files], None


def check_writable(folder: AnyPath) -> None:
    """Refuse, before anything is written, a store polyqa cannot write safely, or a bucket that is not there."""
    if not isinstance(folder, RemotePath):
        return
    from polyqa.errors import PolyqaError

    protocol = folder.protocol.lower()
    if protocol not in WRITABLE_PROTOCOLS:
        raise PolyqaError(
            f"polyqa builds only into local folders and stores with an atomic create-if-absent "
            f"({', '.join(sorted(f'{p}://' for p in WRITABLE_PROTOCOLS))}): {protocol}:// has none, so one writer "
            "per output cannot be guaranteed there", where=str(folder),
            todo="build into a local folder (or s3://, gs://), then copy it there; reading from "
                 f"{protocol}:// works everywhere")
    if not folder.bucket.exists():
        raise PolyqaError("bucket not found (polyqa never creates buckets)", where=str(folder.bucket),
                          todo="create it, or check the name and the endpoint (AWS_ENDPOINT_URL)")
