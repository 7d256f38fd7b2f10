"""Frozen per-model configs with ``--set key=value`` and TOML overrides."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path

from kt.errors import KTError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, value, typ):
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value in (None, "none", "None", "null") and type(None) in args:
            return None
        typ = next(a for a in args if a is not type(None))
    if not isinstance(value, str):
        if isinstance(value, bool) and typ is not bool:  # bool is an int subclass: TOML `prior = true`
            raise KTError(f"config {name}={value!r}: expected {getattr(typ, '__name__', typ)}")
        if typ is float and isinstance(value, int):
            return float(value)
        if typ in (int, float, bool, str) and not isinstance(value, typ):
            raise KTError(f"config {name}={value!r}: expected {typ.__name__}")
        if typing.get_origin(typ) is tuple:
            return tuple(value)
        return value
    try:
        if typ is bool:
            low = value.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if typ is int:
            return int(value)
        if typ is float:
            return float(value)
        if typing.get_origin(typ) is tuple:
            inner = typing.get_args(typ)[0]
            return tuple(inner(v) for v in value.split(",") if v.strip())
        return value
    except ValueError:
        raise KTError(f"--set {name}={value!r}: expected {getattr(typ, '__name__', typ)}") from None


def resolve(
    cls: type, *, toml_path: str | os.PathLike[str] | None = None, sets: list[str] | None = None, model: str = ""
) -> typing.Any:
    """Build a config from defaults, then a TOML file, then ``--set`` pairs.

    Args:
        cls: the model's frozen config dataclass.
        toml_path: optional TOML file; keys at top level or under ``[model]``
            or ``[<model name>]``.
        sets: ``key=value`` strings (later wins).
        model: model name, for the TOML table and messages.

    Returns:
        An instance of ``cls``.

    Raises:
        KTError: unknown keys or values of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values: dict = {}
    if toml_path is not None:
        try:
            raw = tomllib.loads(Path(toml_path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise KTError(f"{toml_path}: cannot read config ({exc})") from None
        if isinstance(raw.get(model), dict):
            table = raw[model]
        elif isinstance(raw.get("model"), dict):
            table = raw["model"]
        else:
            table = {k: v for k, v in raw.items() if not isinstance(v, dict)}
        for k, v in table.items():
            if k not in fields:
                raise KTError(
                    f"{toml_path}: unknown option {k!r} for model {model!r}; options: {', '.join(sorted(fields)) or 'none'}"
                )
            values[k] = _coerce(k, v, hints[k])
    for pair in sets or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise KTError(f"--set {pair!r}: expected key=value")
        if key not in fields:
            raise KTError(f"--set {key}: unknown option for model {model!r}; options: {', '.join(sorted(fields)) or 'none'}")
        values[key] = _coerce(key, value, hints[key])
    cfg = cls(**values)
    check = getattr(cfg, "validate", None)
    if check is not None:
        check()
    return cfg


def to_dict(cfg) -> dict:
    """JSON-ready dict of a config dataclass."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}


def from_dict(cls: type, d: dict):
    """Rebuild a config saved with :func:`to_dict`, ignoring unknown keys."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _coerce(k, v, hints[k]) for k, v in d.items() if k in names})
