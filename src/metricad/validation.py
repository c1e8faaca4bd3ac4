"""A tree of frozen dataclasses built from a plain mapping (params.yaml), every value checked
against its field's type and range, with one-line errors that name the key: the validator
behind params.py's schema.

A section may host a registry's entries (`ENTRIES = "metricad.scoring:SCORES"`): each entry
registered with a settings dataclass gets a subsection under its own name (`score.knn`),
so an entry's settings live in the entry's file, and the schema asks the registry for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import importlib
import math
import types
import typing
from dataclasses import field
from typing import Any, Literal

from metricad.errors import MetricadError


def ranged(low: float | None = None, high: float | None = None, **kw: Any) -> Any:
    """A dataclass field whose value must lie in [low, high] (either side open when None)."""
    return field(metadata={"low": low, "high": high}, **kw)


def folder_name(default: str) -> Any:
    """A dataclass field holding one folder's name (no path, not hidden)."""
    return field(default=default, metadata={"folder_name": True})


def hosted_registry(cls: type) -> Any:
    """The registry a section hosts (its `ENTRIES`, "module:NAME"), imported now; None when
    it hosts none."""
    hosted = getattr(cls, "ENTRIES", None)
    if hosted is None:
        return None
    module, name = hosted.split(":")
    return getattr(importlib.import_module(module), name)


@functools.cache
def completed(cls: type) -> type:
    """`cls` with a subsection per entry of the registry it hosts (its `ENTRIES`) that has
    settings, named after the entry; `cls` itself when it hosts none. The registry is
    imported here, not where the schema is declared: params.py loads neither numpy nor torch
    (numerics.py pins them first)."""
    if "ENTRIES" not in vars(cls):  # it hosts none, or it is a completed section already
        return cls
    registry = hosted_registry(cls)
    slots = [
        (entry, settings, field(default_factory=lambda s=settings: build(s, {})))
        for entry in registry.names()
        if (settings := registry.settings_class(entry)) is not None
    ]
    hosting = dataclasses.make_dataclass(cls.__name__, slots, bases=(cls,), frozen=True)
    hosting.__module__, hosting.__doc__ = cls.__module__, cls.__doc__
    return hosting


def section(cls: type, **values: Any) -> Any:
    """A checked section with its entries' subsections, from keyword values (defaults for
    the rest): `section(ScoreParams, knn={"k": 3})`."""
    return build(cls, values)


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(kind))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        kind, getattr(kind, "__name__", str(kind))
    )


def _shown(value: Any) -> str:
    """repr() cut to one short line: a stray 10 kB string must not flood the error."""
    try:
        text = repr(value)
    except ValueError:  # Python refuses to print integers of more than 4300 digits
        return "an integer too long to show"
    return text if len(text) <= 60 else text[:57] + "..."


def quoted_path(path: Any) -> str:
    """A path or file name quoted and whole (a cut would hide the wrong part), control
    characters escaped so the message stays one line."""
    return f"'{_key(path)}'"


def _key(name: Any) -> str:
    """A key as typed, with control characters (a newline in a quoted YAML key) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name))


def _convert(
    key: str,
    value: Any,
    kind: Any,
    meta: Any,
    moved: dict[str, str] | None,
    deferred: frozenset[type],
) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (kind,) = [k for k in options if k is not type(None)]
        origin = typing.get_origin(kind)
    if origin is list:
        (item_kind,) = typing.get_args(kind)
        if not isinstance(value, list) or not value:
            raise MetricadError(f"params: {key} must be a non-empty list, got {_shown(value)}")
        items = [
            _convert(f"{key}[{n}]", item, item_kind, {}, moved, deferred)
            for n, item in enumerate(value)
        ]
        if len(set(items)) < len(items):
            raise MetricadError(f"params: {key} lists a value twice: {_shown(value)}")
        return items
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise MetricadError(f"params: {key} must be a section (a mapping), got {_shown(value)}")
        return build(kind, value, key + ".", moved, deferred)
    if origin is Literal:
        if value not in typing.get_args(kind):
            raise MetricadError(f"params: {key} must be {_type_name(kind)}, got {_shown(value)}")
        return value
    if kind is float and isinstance(value, str):
        # YAML 1.1 (PyYAML) reads `1e-3` as a string; DVC's `-S` writes such values too.
        with contextlib.suppress(ValueError):
            value = float(value)
    # bool is a subclass of int in Python; `epochs: true` is still a mistake.
    ok = (
        isinstance(value, bool)
        if kind is bool
        else isinstance(value, int | float) and not isinstance(value, bool)
        if kind is float
        else isinstance(value, kind) and not isinstance(value, bool)
    )
    if not ok:
        raise MetricadError(f"params: {key} must be {_type_name(kind)}, got {_shown(value)}")
    if kind is float:
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float
            value = math.inf
    if kind is float and not math.isfinite(value):
        raise MetricadError(f"params: {key} must be a finite number, got {_shown(value)}")
    if meta.get("folder_name") and (not value or "/" in value or value.startswith(".")):
        raise MetricadError(f"params: {key} must be a folder name, got {quoted_path(value)}")
    low, high = meta.get("low"), meta.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise MetricadError(f"params: {key} must be {bounds}, got {_shown(value)}")
    return value


def build(
    cls: type,
    values: dict[str, Any],
    prefix: str = "",
    moved: dict[str, str] | None = None,
    deferred: frozenset[type] = frozenset(),
) -> Any:
    """`cls` (a dataclass tree; each section completed with its entries' subsections) from a
    plain mapping, every value checked against its field's type and range, a missing section
    built from its defaults; `moved`: {old dotted key: new one}, hinted when an old key is
    given. `deferred`: hosting sections left uncompleted, their registries not imported: a
    subsection there is taken for an entry's settings and left unchecked (and unbuilt)."""
    defer = cls in deferred
    cls = cls if defer else completed(cls)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names and not (defer and isinstance(values[key], dict)):
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            if f"{prefix}{key}" in (moved or {}):
                hint = f" (it moved: {moved[f'{prefix}{key}']})"
            raise MetricadError(f"params: unknown key '{prefix}{_key(key)}'{hint}")
    kwargs = {
        f.name: _convert(
            prefix + f.name, values[f.name], hints[f.name], f.metadata, moved, deferred
        )
        for f in dataclasses.fields(cls)
        if f.name in values
    }
    for f in dataclasses.fields(cls):
        if f.name not in kwargs and dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = build(hints[f.name], {}, f"{prefix}{f.name}.", moved, deferred)
    return cls(**kwargs)


def set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """Set `section.name` (as `dvc exp run -S` spells it) in a params.yaml mapping."""
    *sections, last = key.split(".")
    for section in sections:
        values = values.setdefault(section, {})
    values[last] = value
