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
    message = _message(exc)
    if message is None:
        return None
    # Library messages (the hub, YAML) span lines; the command line shows one.
    return " ".join(line.strip() for line in message.splitlines() if line.strip()) or type(exc).__name__


def _message(exc: BaseException) -> str | None:
    if isinstance(exc, PolyqaError):
        return str(exc)
    if type(exc).__name__ == "ValidationError" and type(exc).__module__.startswith("pydantic"):
        from polyqa.settings import config_error

        return str(config_error(exc))
    if isinstance(exc, OSError):
        if exc.errno is None:  # raised by polyqa with its own message
            return str(exc)
        where = f"{exc.filename}: " if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            return f"the disk is full: {where}free space or write elsewhere, then rerun (finished work is kept)"
        if isinstance(exc, FileNotFoundError):
            return f"not found: {where}check the path"
        if isinstance(exc, NotADirectoryError):
            return f"a file where a folder is expected: {where}pass a folder"
        if isinstance(exc, IsADirectoryError):
            return f"a folder where a file is expected: {where}pass a file"
        if isinstance(exc, PermissionError):
            if "://" in str(exc.filename):  # an object store's answer
                return f"permission denied: {where}check the credentials and what they may write to the bucket"
            return f"permission denied: {where}check the owner and mode"
        return f"{exc.strerror or exc}: {where}check the path"
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


# --------------------------------------------------------------------------- checks of config values
# Each raises ConfigError naming the setting, its value and what it must be.


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None,
              optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")


def check_number(name: str, value: object, *, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None, below: float | None = None, optional: bool = False) -> float | None:
    """The value as a float (YAML reads ``3e-5`` as text: numeric text is accepted); ConfigError otherwise.

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive ones.
    """
    if value is None and optional:
        return None
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")
    if above is not None and number <= above:
        raise ConfigError(f"{name} must be > {above}, got {value}")
    if below is not None and number >= below:
        raise ConfigError(f"{name} must be < {below}, got {value}")
    return number


def check_choice(name: str, value: object, choices: tuple | list) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")


def check_languages(name: str, values: object, *, optional: bool = True) -> list[str] | None:
    """The NLLB codes of a list of language codes (any spelling); ConfigError naming the setting otherwise."""
    from polyqa import languages

    if values is None and optional:
        return None
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{name} must be a list of language codes, got {values!r}")
    try:
        codes = [languages.normalize(v) for v in values]
    except languages.UnknownLanguageError as exc:
        raise ConfigError(f"{name}: {exc}", todo="polyqa languages lists the codes") from None
    if len(set(codes)) != len(codes):
        raise ConfigError(f"{name}: a language is listed twice: {values}")
    return codes
