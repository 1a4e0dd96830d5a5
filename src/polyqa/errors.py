"""Errors a user can act on, and how the command line shows them.

Every expected failure becomes one line, ``error: <what>: <where>: <what to do>``,
and exit code 2. ``--debug`` (or ``POLYQA_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3


class PolyqaError(Exception):
    """A failure with what went wrong, where, and what to do about it."""

    def __init__(self, what: str, *, where: str | None = None, todo: str | None = None) -> None:
        super().__init__(what)
        self.what, self.where, self.todo = what, where, todo

    def __str__(self) -> str:
        return ": ".join(part for part in (self.what, self.where, self.todo) if part)


class ConfigError(PolyqaError, ValueError):
    """An invalid setting (unknown key, value out of range, unknown language or model)."""


def debug_enabled(flag: bool = False) -> bool:
    return flag or os.environ.get("POLYQA_DEBUG", "").strip() not in ("", "0", "false", "no")


def user_message(exc: BaseException) -> str | None:
    """The one-line message for an expected failure, or None for a bug (shown with its traceback)."""
    if isinstance(exc, PolyqaError):
        return str(exc)
    if isinstance(exc, OSError):
        if exc.errno is None:  # raised by polyqa with its own message
            return str(exc)
        where = exc.filename or ""
        if exc.errno == errno.ENOSPC:
            return f"the disk is full: {where}: free space or write elsewhere, then rerun (finished work is kept)"
        if isinstance(exc, FileNotFoundError):
            return f"not found: {where}: check the path"
        if isinstance(exc, NotADirectoryError):
            return f"a file where a folder is expected: {where}: pass a folder"
        if isinstance(exc, IsADirectoryError):
            return f"a folder where a file is expected: {where}: pass a file"
        if isinstance(exc, PermissionError):
            return f"permission denied: {where}: check the owner and mode"
        return f"{exc.strerror or exc}: {where}: check the path"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start}): {getattr(exc, 'filename', '') or 'input'}: " \
               "save the file as UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON (line {exc.lineno}): {exc.msg}: fix the file"
    if isinstance(exc, sqlite3.DatabaseError):
        return f"database error: {exc}: the file is damaged or not a polyqa cache"
    if isinstance(exc, (ValueError, KeyError, LookupError)):
        return str(exc) if not isinstance(exc, KeyError) else f"missing key {exc}"
    if isinstance(exc, ImportError):
        return f"{exc}: install the missing package"
    return None
