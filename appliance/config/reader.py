"""Typed, path-aware access to a parsed HOCON tree, collecting warnings as it goes.

A `Section` wraps one object of the tree. Every key read through it is marked as seen;
`finish()` then warns once about each key nobody read, naming its full path.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from pyhocon import ConfigTree

from . import units
from .errors import ConfigError
from .positions import Path, Positions

T = TypeVar("T")

MISSING = object()


def format_path(path: Path) -> str:
    """("webhook", "events", 2, "event") -> "webhook.events[2].event"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def clean_key(key: str) -> str:
    # pyhocon keeps the quotes of a quoted key that contains a dot ('"a.b"').
    if len(key) >= 2 and key[0] == key[-1] == '"':
        return key[1:-1]
    return key


class Context:
    """Where the text came from, where its keys are, and the warnings so far."""

    def __init__(self, source: str, positions: Positions) -> None:
        self.source = source
        self.lines = positions.lines
        self.merged = positions.merged
        self._warnings: list[tuple[int, str]] = []

    @property
    def warnings(self) -> list[str]:
        """The warnings in file order."""
        return [text for _, text in sorted(self._warnings, key=lambda warning: warning[0])]

    def line_of(self, path: Path) -> int | None:
        for depth in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:depth]))
            if line is not None:
                return line
        return None

    def error(self, path: Path, problem: str) -> ConfigError:
        return ConfigError(self.source, self.line_of(path), format_path(path) or None, problem)

    def warn(self, path: Path, message: str) -> None:
        line = self.line_of(path)
        where = f"{self.source}:{line}" if line is not None else self.source
        self._warnings.append((line or 0, f"{where}: {message}"))


class Section:
    """One HOCON object at `path`, read key by key."""

    def __init__(self, ctx: Context, tree: ConfigTree, path: Path) -> None:
        self.ctx = ctx
        self.path = path
        self.values = {clean_key(key): value for key, value in tree.items()}
        self.seen: set[str] = set()

    # -- raw access ---------------------------------------------------------------

    def has(self, key: str) -> bool:
        return key in self.values

    def raw(self, key: str) -> object:
        """The value as pyhocon made it, or MISSING; marks the key as seen."""
        self.seen.add(key)
        return self.values.get(key, MISSING)

    def keys(self) -> list[str]:
        return list(self.values)

    def at(self, key: str) -> Path:
        return self.path + (key,)

    def fail(self, key: str | int | None, problem: str) -> ConfigError:
        path = self.path if key is None else self.path + (key,)
        return self.ctx.error(path, problem)

    # -- typed access -------------------------------------------------------------

    def get(self, key: str, default: T, convert: Callable[[object], T]) -> T:
        value = self.raw(key)
        if value is MISSING:
            return default
        try:
            return convert(value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def string(self, key: str, default: T) -> str | T:
        return self.get(key, default, units.to_str)

    def boolean(self, key: str, default: T) -> bool | T:
        return self.get(key, default, units.to_bool)

    def integer(self, key: str, default: T, low: int | None = None, high: int | None = None) -> int | T:
        value = self.get(key, default, units.to_int)
        if value is not default:
            self.check_range(key, value, low, high)
        return value

    def number(self, key: str, default: T, above: float) -> float | T:
        value = self.get(key, default, units.to_float)
        if value is not default and not value > above:
            raise self.fail(key, f"must be greater than {above:g}, got {value:g}")
        return value

    def duration(
        self, key: str, default: T, number_unit: float = 1.0, unit_name: str = "seconds",
        positive: bool = True,
    ) -> float | T:
        value = self.get(key, default, lambda v: units.to_duration(v, number_unit, unit_name))
        if value is not default and (value < 0 or (positive and value == 0)):
            raise self.fail(key, f"must be {'greater than 0' if positive else '0 or more'}")
        return value

    def size(self, key: str, default: T, low: int | None = None, high: int | None = None) -> int | T:
        value = self.get(key, default, units.to_size)
        if value is not default:
            self.check_range(key, value, low, high, units.format_size)
        return value

    def choice(self, key: str, default: T, choices: tuple[str, ...]) -> str | T:
        value = self.get(key, default, units.to_str)
        if value is default:
            return value
        if value.lower() not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value.lower()

    def check_range(
        self, key: str, value: int, low: int | None, high: int | None, show: Callable[[int], str] = str
    ) -> None:
        if low is not None and high is not None and not low <= value <= high:
            raise self.fail(key, f"must be between {show(low)} and {show(high)}, got {show(value)}")
        if low is not None and value < low:
            raise self.fail(key, f"must be {show(low)} or more, got {show(value)}")
        if high is not None and value > high:
            raise self.fail(key, f"must be {show(high)} or less, got {show(value)}")

    def child(self, key: str) -> Section | None:
        """The object under `key` as a Section, None if absent; an error if not an object."""
        value = self.raw(key)
        if value is MISSING:
            return None
        if not isinstance(value, ConfigTree):
            raise self.fail(key, f"expected an object {{ ... }}, got {units.describe(value)}")
        return Section(self.ctx, value, self.at(key))

    # -- warnings -----------------------------------------------------------------

    def not_implemented(self, *keys: str, note: str = "") -> None:
        """Warn once for each of `keys` present: a NanoMQ key this appliance does not implement."""
        for key in keys:
            if self.has(key):
                self.seen.add(key)
                suffix = f"; {note}" if note else ""
                self.ctx.warn(self.at(key), f"{format_path(self.at(key))} is not implemented (ignored{suffix})")

    def finish(self) -> None:
        """Warn about every key that was never read."""
        for key in self.values:
            if key not in self.seen:
                self.seen.add(key)
                self.ctx.warn(self.at(key), f"unknown key {format_path(self.at(key))} (ignored)")
