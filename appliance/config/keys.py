"""Every configuration key, declared once: path, kind (type, unit, bounds), default,
environment variable, NanoMQ's or ours, and a one-line doc.

A key is declared where the model holds it, as the default of its dataclass field:

    @dataclass(frozen=True)
    class MqttConfig(Block):
        __section__ = "mqtt"
        max_packet_size: int = key(Size(1, 260 * MB), 1 * MB, "Largest packet accepted and sent.",
                                   env="NANOMQ_MAX_PACKET_SIZE")

From that one declaration come: the file reader (`reader.read_block`), the environment
overlay (`env.apply_env`, through `parse` too, so the file and the environment accept
exactly the same values), the model's own check of its values (`Block.__post_init__`, so a
Config built in code obeys the same bounds and nothing downstream re-checks), and the
README's table (`reference.table()`, written by scripts/config_reference.py).

A key that is not one field (a listener's bind, an `enable` switch) is a `Key` constant
next to the reader that uses it and is listed in `reference.py`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from . import units

NANOMQ, OURS = "NanoMQ", "ours"
KB, MB = 1024, 1024 * 1024
KEY = "appliance.config.key"  # the dataclass field metadata entry holding a Key


class Invalid(ValueError):
    """A model invariant broken: `field` names the dataclass field (None: the whole block)."""

    def __init__(self, field_name: str | None, problem: str) -> None:
        super().__init__(problem)
        self.field = field_name


# -- kinds: what a value may be, how it is written, how it is shown --------------------------


class Kind:
    """How one key's value is written (`form`), read (`parse`) and checked (`check`)."""

    form = "value"

    def parse(self, value: object) -> Any:
        """The model's value from what the file (a pyhocon value) or the environment (a
        string) wrote; ValueError saying what was expected."""
        value = self.convert(value)
        self.check(value)
        return value

    def convert(self, value: object) -> Any:
        return value

    def check(self, value: Any) -> None:
        """ValueError if an already typed value breaks the bounds."""

    def show(self, value: Any) -> str:
        """The default as the README writes it."""
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return f'"{value}"'
        return str(value)

    def notes(self, written: object) -> list[str]:
        """Warnings about a value as written (e.g. a part NanoMQ knows and we ignore)."""
        return []


class ItemError(ValueError):
    """A bad element of a list value: `index` is its position, for the error's key path."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(problem)
        self.index = index


def _bounds(value: float, low, high, show=str) -> None:
    if low is not None and high is not None and not low <= value <= high:
        raise ValueError(f"must be between {show(low)} and {show(high)}, got {show(value)}")
    if low is not None and value < low:
        raise ValueError(f"must be {show(low)} or more, got {show(value)}")
    if high is not None and value > high:
        raise ValueError(f"must be {show(high)} or less, got {show(value)}")


def _range_form(name: str, low, high, show=str) -> str:
    if low is not None and high is not None:
        return f"{name} {show(low)}..{show(high)}"
    if low is not None:
        return f"{name} >= {show(low)}"
    return name


@dataclass(frozen=True)
class Int(Kind):
    low: int | None = None
    high: int | None = None

    @property
    def form(self) -> str:
        return _range_form("int", self.low, self.high)

    def convert(self, value):
        return units.to_int(value)

    def check(self, value):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer, got {units.describe(value)}")
        _bounds(value, self.low, self.high)


@dataclass(frozen=True)
class Size(Kind):
    """Bytes, written 1024, 10KB, 256MB (units of 1024, as NanoMQ)."""

    low: int | None = None
    high: int | None = None
    optional: bool = False  # None allowed: the default is derived from another key

    @property
    def form(self) -> str:
        return _range_form("size", self.low, self.high, units.format_size)

    def convert(self, value):
        return units.to_size(value)

    def check(self, value):
        if value is None and self.optional:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected a size in bytes, got {units.describe(value)}")
        _bounds(value, self.low, self.high, units.format_size)

    def show(self, value):
        return units.format_size(value) if value else "0"


def _seconds(value: float) -> str:
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if value >= factor and value % factor == 0:
            return f"{value / factor:g}{unit}"
    if value < 1 and round(value * 1000, 6).is_integer():
        return f"{value * 1000:g}ms"
    return f"{value:g}s"


@dataclass(frozen=True)
class Duration(Kind):
    """Float seconds, written 10s, 500ms, 1m, 1h or a bare number of `unit_name`."""

    number_unit: float = 1.0  # seconds per bare number (0.001 for NanoMQ's ms keys)
    unit_name: str = "seconds"
    positive: bool = True  # 0 refused
    high: float = 30 * 86400.0  # beyond this a timer overflows or never fires: a typo

    @property
    def form(self) -> str:
        bare = "ms" if self.number_unit == 0.001 else "s"
        return f"duration ({'> 0' if self.positive else '>= 0'}, <= {_seconds(self.high)}; bare number: {bare})"

    def convert(self, value):
        return units.to_duration(value, self.number_unit, self.unit_name)

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a duration, got {units.describe(value)}")
        if value < 0 or (self.positive and value == 0):
            raise ValueError(f"must be {'greater than 0' if self.positive else '0 or more'}")
        if value > self.high:
            raise ValueError(f"must be {_seconds(self.high)} or less, got {value:g}s")

    def show(self, value):
        if self.number_unit == 0.001:
            return f"{value * 1000:g}"
        return _seconds(value)


@dataclass(frozen=True)
class Number(Kind):
    above: float = 0.0

    @property
    def form(self) -> str:
        return f"number > {self.above:g}"

    def convert(self, value):
        return units.to_float(value)

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > self.above:
            raise ValueError(f"must be greater than {self.above:g}, got {units.describe(value)}")


@dataclass(frozen=True)
class Bool(Kind):
    form = "bool"

    def convert(self, value):
        return units.to_bool(value)

    def check(self, value):
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {units.describe(value)}")


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple[str, ...] = ()
    none_word: str | None = None  # this choice is held as None ("none" for "not set")
    unimplemented: tuple[str, ...] = ()  # NanoMQ's values we do not implement: refused, saying so

    @property
    def form(self) -> str:
        return "|".join(self.choices)

    def convert(self, value):
        if value is False and self.none_word:  # `peer_cert_as_username = false`
            return None
        word = units.to_str(value).strip().lower()
        if word in self.unimplemented:
            others = " or ".join(c for c in self.choices if c != self.none_word)
            raise ValueError(f"{word} is not implemented; expected {others}")
        if word not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {units.describe(value)}")
        return None if word == self.none_word else word

    def check(self, value):
        if value is None and self.none_word:
            return
        if value not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {units.describe(value)}")

    def show(self, value):
        return (self.none_word or "none") if value is None else value


@dataclass(frozen=True)
class Text(Kind):
    form: str = "string"
    empty: bool = True  # "" allowed
    optional: bool = False  # None allowed (the default "not set")

    def convert(self, value):
        text = units.to_str(value)
        return None if self.optional and text == "" else text

    def check(self, value):
        if value is None and self.optional:
            return
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {units.describe(value)}")
        if not value and not self.empty:
            raise ValueError("cannot be empty")


_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def parse_host(text: str) -> str:
    """An IPv4/IPv6 address (brackets optional) or a host name; ValueError otherwise.

    Dotted numbers are IPv4 or nothing: 999.1.1.1 is refused here, not at bind time.
    """
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):
        raise ValueError(f"{text!r} is not an IPv4 address (each part 0..255)")
    if _HOSTNAME.match(host):
        return host
    raise ValueError(f"expected an IP address or host name, got {text!r}")


def parse_bind(text: str) -> tuple[str, int]:
    """"host:port" or "[ipv6]:port" -> (host, port); ValueError with the expected form."""
    form = 'expected "host:port" such as "0.0.0.0:1883" or "[::]:1883"'
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{form}, got {text!r}")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{form}, got {text!r}")
        if ":" in host:
            raise ValueError(f"an IPv6 address needs brackets, e.g. \"[::]:1883\", got {text!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be 0..65535, got {text!r}")
    return parse_host(host), int(port)


@dataclass(frozen=True)
class Host(Kind):
    """An IP address or host name; also the host of "host:port" or "scheme://host:port/"."""

    form = "IP or host name"

    def convert(self, value):
        if not isinstance(value, str):
            raise ValueError(f"expected an IP address or host name, got {units.describe(value)}")
        rest = value.strip()
        rest = rest.partition("://")[2] or rest
        rest = rest.split("/", 1)[0]
        if rest.startswith("[") and "]:" in rest or rest.count(":") == 1:
            return parse_bind(rest)[0]
        return parse_host(rest)

    def check(self, value):
        if not isinstance(value, str):
            raise ValueError(f"expected an IP address or host name, got {units.describe(value)}")
        parse_host(value)


def _without_scheme(value, schemes: tuple[str, ...], form: str) -> str:
    """`value` ("<form>" or NanoMQ's "<scheme>://<form>" with one of `schemes`) without the scheme."""
    if not isinstance(value, str):
        raise ValueError(f'expected "{form}", got {units.describe(value)}')
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    if scheme.lower() not in schemes:
        expected = f'"{schemes[0]}://{form}" or "{form}"' if schemes else f'"{form}"'
        raise ValueError(f"expected {expected}, got {value!r}")
    return rest


@dataclass(frozen=True)
class Bind(Kind):
    """"host:port", optionally as NanoMQ's URL form "<scheme>://host:port"."""

    schemes: tuple[str, ...] = ()

    @property
    def form(self) -> str:
        return f'"host:port" or "{self.schemes[0]}://host:port"' if self.schemes else '"host:port"'

    def convert(self, value):
        return parse_bind(_without_scheme(value, self.schemes, "host:port"))

    def show(self, value):
        return f'"{value}"'


@dataclass(frozen=True)
class WebSocketBind(Kind):
    """NanoMQ's WebSocket bind "host:port/path" (no path: /mqtt), optionally as its URL form
    "nmq-ws://host:port/path" -> (host, port, path)."""

    schemes: tuple[str, ...] = ()

    @property
    def form(self) -> str:
        return f'"host:port/path" or "{self.schemes[0]}://host:port/path"' if self.schemes else '"host:port/path"'

    def convert(self, value):
        address, slash, path = _without_scheme(value, self.schemes, "host:port/path").partition("/")
        return (*parse_bind(address), "/" + path if slash else "/mqtt")

    def show(self, value):
        return f'"{value}"'


@dataclass(frozen=True)
class Structure(Kind):
    """A value with its own reader (a list of rules, an include...): documented here,
    read by the block's reader."""

    form: str = "object"

    def show(self, value):
        if value is None:
            return "none"
        if value == ():
            return "[]"
        return "-"


# -- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    path: str  # as the README writes it: "mqtt.max_packet_size", "listeners.ssl[.<name>].certfile"
    kind: Kind
    default: Any
    doc: str
    env: str | None = None  # NanoMQ's environment variable for it
    origin: str = NANOMQ  # NANOMQ: NanoMQ's key with NanoMQ's meaning; OURS: an addition
    aliases: tuple[str, ...] = ()  # other names accepted in the file, in the same block
    shown_default: str | None = None  # the README's default where `kind.show` cannot say it

    def parse(self, value: object) -> Any:
        return self.kind.parse(value)

    def default_text(self) -> str:
        return self.shown_default if self.shown_default is not None else self.kind.show(self.default)


def key(
    path: str, kind: Kind, default: Any, doc: str, *, env: str | None = None, origin: str = NANOMQ,
    aliases: tuple[str, ...] = (), shown_default: str | None = None, repr: bool = True,  # noqa: A002
) -> Any:
    """A dataclass field whose default is `default`, declared as the config key `path`."""
    spec = Key(path, kind, default, doc, env, origin, aliases, shown_default)
    return field(default=default, repr=repr, metadata={KEY: spec})


def key_of(cls: type, name: str) -> Key:
    """The Key declared by field `name` of dataclass `cls`."""
    return cls.__dataclass_fields__[name].metadata[KEY]


def field_keys(cls: type) -> list[tuple[str, Key]]:
    """(field name, Key) for each field of `cls` declared with key(), in order."""
    return [(f.name, f.metadata[KEY]) for f in dataclasses.fields(cls) if KEY in f.metadata]


class Block:
    """Base of the model's blocks: building one checks every key field against its kind,
    then `invariants()` (rules between fields). Raises Invalid naming the field."""

    __section__ = ""  # the block's path in the file ("mqtt", "log.rotation")

    def __post_init__(self) -> None:
        for name, spec in field_keys(type(self)):
            if isinstance(spec.kind, Structure):
                continue
            try:
                spec.kind.check(getattr(self, name))
            except ValueError as exc:
                raise Invalid(name, str(exc)) from None
        self.invariants()

    def invariants(self) -> None:
        """Rules between fields; raise Invalid(field, problem)."""
