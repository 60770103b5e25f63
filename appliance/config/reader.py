"""Typed, path-aware access to a parsed HOCON tree, collecting warnings as it goes.

A `Section` wraps one object of the tree. Every key read through it is marked as seen;
`finish()` then warns once about each key nobody read, naming its full path.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from pyhocon import ConfigTree

import dataclasses

from . import units
from .errors import ConfigError
from .keys import KEY, Block, Invalid, ItemError, Key, Kind, Structure, field_keys
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
        self.written = positions.written
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
        name = format_path(path) or None
        written = next((self.written[tuple(path[:depth])] for depth in range(len(path), 0, -1)
                        if tuple(path[:depth]) in self.written), None)
        if name and written:
            name = f"{name} (written {written})"
        return ConfigError(self.source, self.line_of(path), name, problem)

    def warn(self, path: Path, message: str) -> None:
        self.warn_line(self.line_of(path), message)

    def warn_line(self, line: int | None, message: str) -> None:
        where = f"{self.source}:{line}" if line is not None else self.source
        self._warnings.append((line or 0, f"{where}: {message}"))


class Section:
    """One HOCON object at `path`, read key by key."""

    def __init__(self, ctx: Context, tree: ConfigTree, path: Path) -> None:
        self.ctx = ctx
        self.path = path
        self.values = {clean_key(key): value for key, value in tree.items()}
        self.seen: set[str] = set()
        self._children: dict[str, Section] = {}

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
        except ItemError as exc:
            raise self.ctx.error(self.at(key) + (exc.index,), str(exc)) from None
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def value(self, key: str, kind: Kind, default: T) -> object | T:
        """`key` read and checked as `kind`, or `default` when absent (blocks whose keys are
        not model fields, such as each bridge's, read this way)."""
        return self.get(key, default, kind.parse)

    def string(self, key: str, default: T) -> str | T:
        return self.get(key, default, units.to_str)

    def choice(self, key: str, default: T, choices: tuple[str, ...]) -> str | T:
        value = self.get(key, default, units.to_str)
        if value is default:
            return value
        if value.lower() not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value.lower()

    def child(self, key: str) -> Section | None:
        """The object under `key` as a Section, None if absent; an error if not an object."""
        if key in self._children:
            return self._children[key]
        value = self.raw(key)
        if value is MISSING:
            return None
        if not isinstance(value, ConfigTree):
            raise self.fail(key, f"expected an object {{ ... }}, got {units.describe(value)}")
        self._children[key] = Section(self.ctx, value, self.at(key))
        return self._children[key]

    # -- declared keys (keys.py) --------------------------------------------------

    def read(self, spec: Key, base: str) -> object:
        """The value of `spec` (a key of the block at path `base`, this section), parsed
        and checked by its kind; MISSING when the file does not set it."""
        *parents, name = spec.path[len(base) + 1 :].split(".")
        section: Section | None = self
        for parent in parents:
            section = section.child(parent)
            if section is None:
                return MISSING
        written = [n for n in (name, *spec.aliases) if section.has(n)]
        if len(written) > 1:
            raise section.fail(written[1], f"write either {written[0]} or {written[1]} (the same key), not both")
        if not written:
            return MISSING
        value = section.get(written[0], MISSING, spec.parse)
        for note in spec.kind.notes(section.values[written[0]]):
            section.ctx.warn(section.at(written[0]), f"{format_path(section.at(written[0]))}: {note}")
        return value

    def fail_field(self, cls: type, field_name: str | None, problem: str) -> ConfigError:
        """An error about field `field_name` of the block `cls` read from this section."""
        if field_name is None or KEY not in cls.__dataclass_fields__[field_name].metadata:
            return self.fail(None, problem)
        spec = cls.__dataclass_fields__[field_name].metadata[KEY]
        relative = spec.path[len(cls.__section__) + 1 :].split(".")
        written = next((n for n in (relative[-1], *spec.aliases) if self._has_path(relative[:-1] + [n])), None)
        return self.ctx.error(self.path + tuple(relative[:-1] + [written or relative[-1]]), problem)

    def _has_path(self, parts: list[str]) -> bool:
        values = self.values
        for part in parts:
            if not isinstance(values, (dict, ConfigTree)) or part not in values:
                return False
            values = values[part]
        return True

    # -- warnings -----------------------------------------------------------------

    def not_implemented(self, *keys: str, note: str = "") -> None:
        """Warn once for each of `keys` present: a NanoMQ key this appliance does not implement."""
        for key in keys:
            if self.has(key):
                self.seen.add(key)
                suffix = f"; {note}" if note else ""
                self.ctx.warn(self.at(key), f"{format_path(self.at(key))} is not implemented (ignored{suffix})")

    def finish(self) -> None:
        """Warn about every key that was never read, here and in the objects read below."""
        for child in self._children.values():
            child.finish()
        for key in self.values:
            if key not in self.seen:
                self.seen.add(key)
                self.ctx.warn(self.at(key), f"unknown key {format_path(self.at(key))} (ignored)")


def read_block(section: Section | None, cls: type, **given: object):
    """Build the Block `cls` from `section` (None: the block is absent): every field declared
    with key() is read and checked by its kind, nested blocks are read from their
    sub-sections, `given` fills the fields a block's own reader made (Structure keys);
    the rest keep their defaults. A broken invariant is an error naming that key's line.
    Keys listed in `cls.__not_implemented__` are a warning each."""
    values: dict[str, object] = {}
    if section is not None:
        for name, spec in field_keys(cls):
            if name in given or isinstance(spec.kind, Structure):
                continue
            value = section.read(spec, cls.__section__)
            if value is not MISSING:
                values[name] = value
        for f in dataclasses.fields(cls):
            nested = f.default_factory
            if f.name in given or not (isinstance(nested, type) and issubclass(nested, Block)):
                continue
            values[f.name] = read_block(section.child(nested.__section__.rsplit(".", 1)[-1]), nested)
        section.not_implemented(*getattr(cls, "__not_implemented__", ()))
    for name, spec in field_keys(cls):
        if spec.default is dataclasses.MISSING and name not in values and name not in given:
            where = section if section is not None else None
            problem = f"{spec.path[len(cls.__section__) + 1:]} is required"
            if where is None:
                raise ConfigError(cls.__section__, None, None, problem)
            raise where.fail(None, problem)
    try:
        return cls(**values, **given)
    except Invalid as exc:
        if section is None:
            raise ConfigError(cls.__section__, None, None, str(exc)) from None
        raise section.fail_field(cls, exc.field, str(exc)) from None
