"""How every polyqa config is declared, read and checked.

A config is a pydantic dataclass (:func:`config`). Each setting is declared once, as a
field with its type, its bounds and its help (:func:`setting`); the command-line help,
the Prefect flow parameters and the checks all come from that declaration. Checks that
span several settings live in the class's ``__post_init__``.

Whatever goes wrong (an unknown key, a missing setting, a value out of range) comes out
as one :class:`~polyqa.errors.ConfigError` naming the setting and the file or caller,
whether the config came from YAML (:func:`read_yaml`), a mapping (:func:`build`) or was
constructed directly (the CLI shows a pydantic ``ValidationError`` the same way).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import re
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Annotated, Any

from pydantic import AllowInfNan, BeforeValidator, ConfigDict, Field, Strict, ValidationError
from pydantic.dataclasses import dataclass as _pydantic_dataclass
from pydantic_core import PydanticUndefined

from polyqa.errors import ConfigError, PolyqaError


def _not_a_flag(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would read true as 1.0
        raise ValueError(f"must be a number, got {value!r}")
    return value


def _comma_list(value: Any) -> Any:
    """``"de, fr"`` (a command-line option, a flow parameter) as ``["de", "fr"]``."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _path_text(value: Any) -> Any:
    return str(value) if isinstance(value, PurePath) else value


# Value types of settings. YAML gives true/false and whole numbers exactly, so those are strict;
# it reads 3e-5 as text, so numbers accept numeric text (but neither true nor NaN).
Whole = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
Number = Annotated[float, BeforeValidator(_not_a_flag), AllowInfNan(False)]
Location = Annotated[str, BeforeValidator(_path_text)]  # a path (str or Path) or a URL
Codes = Annotated[list[str], BeforeValidator(_comma_list)]  # language codes, a list or "de,fr"

_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def config(cls: type) -> type:
    """``cls`` as a checked config: a pydantic dataclass that refuses unknown keys and, however it
    is constructed (keywords, :func:`build`, ``dataclasses.replace``), fails with a ConfigError."""
    checked = _pydantic_dataclass(cls, config=_CONFIG)
    validate = checked.__init__

    @functools.wraps(validate)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            validate(self, *args, **kwargs)
        except ValidationError as exc:
            raise config_error(exc) from None

    checked.__init__ = __init__
    return checked


def setting(default: Any = PydanticUndefined, *, help: str, **constraints: Any) -> Any:
    """A setting's declaration: default (or ``default_factory=``), help and bounds (``ge``, ``lt``...)."""
    return Field(default, description=help, **constraints)


def fields_of(cls: type) -> dict[str, Any]:
    """Name -> pydantic FieldInfo of a config class (dataclass or model), in declaration order."""
    return dict(getattr(cls, "__pydantic_fields__", None) or cls.model_fields)


def help_of(cls: type) -> dict[str, str]:
    """Name -> one-line help of every setting."""
    return {name: info.description or "" for name, info in fields_of(cls).items()}


def defaults(cls: type) -> dict[str, Any]:
    """Name -> default of every setting that has one (required settings are absent)."""
    return {name: info.get_default(call_default_factory=True)
            for name, info in fields_of(cls).items() if not info.is_required()}


def required(cls: type) -> list[str]:
    return [name for name, info in fields_of(cls).items() if info.is_required()]


def signature(cls: type, return_annotation: Any = inspect.Signature.empty) -> inspect.Signature:
    """The settings as keyword-only parameters with their types and defaults.

    Set as a function's ``__signature__`` it makes the function's parameters (a Prefect
    flow's parameter schema) follow the config without listing the settings again.
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    values = defaults(cls)
    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[name],
                                default=values.get(name, inspect.Parameter.empty))
              for name in fields_of(cls)]
    return inspect.Signature(params, return_annotation=return_annotation)


def check_keys(known: type | Iterable[str], data: Mapping[str, Any], source: str | None = None, *,
               section: str | None = None) -> None:
    """ConfigError for keys not ``known`` (a config class, a dataclass or names), with the closest
    known ones, or for a config class's required settings left out. ``section`` names a nested
    mapping (``decoding``)."""
    required_keys: list[str] = []
    if isinstance(known, type) and (hasattr(known, "__pydantic_fields__") or hasattr(known, "model_fields")):
        names, required_keys = list(fields_of(known)), required(known)
    elif isinstance(known, type):
        names = [f.name for f in dataclasses.fields(known)]
    else:
        names = list(known)
    prefix = f"{section}: " if section else ""
    unknown = sorted(set(data) - set(names))
    if unknown:
        close = sorted({m for key in unknown for m in difflib.get_close_matches(key, names, n=1)})
        raise ConfigError(f"{prefix}unknown setting(s) {unknown}", where=source,
                          todo=(f"did you mean {close}? " if close else "") + f"known: {sorted(names)}")
    missing = [name for name in required_keys if data.get(name) in (None, "")]
    if missing:
        raise ConfigError(f"{prefix}missing required setting(s) {missing}", where=source)


def build(cls: type, data: Mapping[str, Any], source: str = "config") -> Any:
    """``cls`` from a mapping of settings; any problem is one ConfigError naming ``source``."""
    check_keys(cls, data, source)
    try:
        return cls(**dict(data))
    except ValidationError as exc:
        raise config_error(exc, source) from None
    except ConfigError as exc:
        what = f"{exc.what} ({exc.where})" if exc.where else exc.what
        raise type(exc)(what, where=source, todo=exc.todo) from None
    except PolyqaError as exc:
        what = f"{exc.what} ({exc.where})" if exc.where else exc.what
        kind = type(exc) if isinstance(exc, ConfigError) else ConfigError
        raise kind(what, where=source, todo=exc.todo) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), where=source) from exc


_BOUNDS = {"greater_than_equal": (">=", "ge"), "less_than_equal": ("<=", "le"),
           "greater_than": (">", "gt"), "less_than": ("<", "lt")}
_KINDS = {"int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
          "float_type": "a number", "float_parsing": "a number", "finite_number": "a number",
          "bool_type": "true or false", "bool_parsing": "true or false", "string_type": "text",
          "list_type": "a list", "dict_type": "a mapping"}


def config_error(exc: ValidationError, source: str | None = None) -> ConfigError:
    """The first problem of a ValidationError as polyqa's one-line ConfigError, naming the setting."""
    errors = exc.errors()
    extra = sorted({str(e["loc"][0]) for e in errors if e["type"] in ("extra_forbidden", "unexpected_keyword_argument")})
    if extra:
        return ConfigError(f"unknown setting(s) {extra}", where=source)
    missing = [str(e["loc"][0]) for e in errors if e["type"] in ("missing", "missing_argument")]
    if missing:
        return ConfigError(f"missing required setting(s) {missing}", where=source)
    first = errors[0]
    name = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                   for i, p in enumerate(first["loc"]))
    kind, ctx, value = first["type"], first.get("ctx") or {}, first.get("input")
    if kind in ("value_error", "assertion_error") and isinstance(ctx.get("error"), PolyqaError):
        inner = ctx["error"]
        return type(inner)(inner.what, where=inner.where or source, todo=inner.todo)
    if kind in _BOUNDS:
        sign, key = _BOUNDS[kind]
        return ConfigError(f"{name} must be {sign} {ctx[key]}, got {value!r}", where=source)
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        return ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}", where=source)
    if kind in _KINDS:
        return ConfigError(f"{name} must be {_KINDS[kind]}, got {value!r}", where=source)
    message = first["msg"].removeprefix("Value error, ")
    return ConfigError(f"{name} {message}" if name and message.startswith("must") else
                       (f"{name}: {message}" if name else message), where=source)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of settings in a YAML file; errors name the file."""
    import yaml

    from polyqa import paths

    path = Path(paths.expand(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=str(path),
                          todo="save the config as UTF-8") from None
    except IsADirectoryError:
        raise ConfigError("a folder where a YAML config file is expected", where=str(path),
                          todo="pass the config file") from None
    except FileNotFoundError:
        raise ConfigError("config file not found", where=str(path), todo="check the path") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise ConfigError(f"not valid YAML ({first})", where=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of settings, got {type(data).__name__}", where=str(path))
    return data
