"""A registry per variation point (data sources, scores, CAM methods): a name -> entry map
filled by the entries' own modules, so adding one is one new file plus its name in the params
schema (params.py), which `check_names` holds the registry to. An entry with settings of its
own registers their dataclass with it: the schema gives it a subsection under its name
(validation.completed), and `settings_in` hands that subsection to the entry."""

from __future__ import annotations

import importlib
import pkgutil
import typing
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from metricad.errors import MetricadError

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """Named entries of one kind; `register` is the decorator an entry's module applies."""

    def __init__(self, kind: str, param: str) -> None:
        self.kind, self.param = kind, param
        self._entries: dict[str, Entry] = {}
        self._traits: dict[str, dict[str, Any]] = {}
        self._settings: dict[str, type | None] = {}

    def register(
        self, name: str, settings: type | None = None, **traits: Any
    ) -> Callable[[Entry], Entry]:
        """Register an entry under `name`; `settings`: the dataclass of its own params (a
        subsection named after it); `traits`: facts about it that other code asks the registry
        for (a source's kind of data.root), instead of testing its name."""

        def add(entry: Entry) -> Entry:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name], self._traits[name] = entry, traits
            self._settings[name] = settings
            return entry

        return add

    def settings_class(self, name: str) -> type | None:
        """The dataclass of the entry's own settings (None: it has none)."""
        self[name]  # an unknown name: the one-line error
        return self._settings[name]

    def settings_in(self, name: str, section: object) -> Any:
        """The entry's settings from the params section that hosts them (None: it has none)."""
        return getattr(section, name) if self.settings_class(name) is not None else None

    def create(self, name: str, *args: Any, settings: object | None = None) -> Any:
        """The entry called with `args`, and with its settings when it has some (`settings`,
        or their defaults when None)."""
        own = self.settings_class(name)
        if own is None:
            return self[name](*args)
        return self[name](*args, own() if settings is None else settings)

    def trait(self, name: str, key: str) -> Any:
        """A trait the entry `name` was registered with (None when it has none)."""
        self[name]  # an unknown name: the one-line error
        return self._traits[name].get(key)

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            raise MetricadError(
                f"params: {self.param}: no {self.kind} named {name!r} "
                f"(known: {', '.join(self.names())})"
            )
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def check_names(self, schema: object, without: tuple[str, ...] = ()) -> None:
        """The registry and the params schema's Literal name the same entries (`without`: the
        schema's choices that are no entry, such as `none`)."""
        declared = sorted(set(typing.get_args(schema)) - set(without))
        if declared != self.names():
            raise RuntimeError(
                f"{self.kind} registry {self.names()} differs from the params schema {declared}"
            )


def import_entries(package: str, path: Iterable[str]) -> None:
    """Import every module of a registry package, so each registers its entry."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
