"""Turn the value forms NanoMQ users write into numbers: durations, sizes, booleans, counts.

Each function raises ValueError with the expected form spelled out; callers add the
key path (or environment variable) and the file position.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from pyhocon import ConfigTree

_DURATION_UNITS = {
    "ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}
_DURATION = re.compile(r"^\s*(\d{1,18}(?:\.\d{1,9})?)\s*([a-zA-Z]*)\s*$")

# NanoMQ's units are powers of 1024 (its log rotation and max_packet_size parsers).
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kb": 1024, "kib": 1024,
    "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1024**3, "gib": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d{1,18}(?:\.\d{1,9})?)\s*([a-zA-Z]*)\s*$")

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def describe(value: object) -> str:
    """How a value is named in an error message (never its contents if it is a container)."""
    if isinstance(value, ConfigTree):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return f"the duration {value.total_seconds():g}s"
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: object) -> bool:
    # Finite, and within 64 bits: nothing here needs more, and floats overflow beyond.
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 2**63
    return isinstance(value, float) and math.isfinite(value)


def to_duration(value: object, number_unit: float = 1.0, unit_name: str = "seconds") -> float:
    """Seconds from a timedelta (unquoted `10s`), a string ("500ms", "1m") or a bare number.

    A bare number is in `number_unit` seconds (1 for most keys, 0.001 for NanoMQ's ms keys).
    """
    if isinstance(value, timedelta):
        return value.total_seconds()
    if _is_number(value):
        return float(value) * number_unit
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            # Case matters, as in HOCON: "1M" would be a month, not a minute.
            number, unit = float(match.group(1)), match.group(2)
            if not unit:
                return number * number_unit
            if unit in _DURATION_UNITS:
                return number * _DURATION_UNITS[unit]
    raise ValueError(
        f"expected a duration such as 10s, 500ms, 1m, 1h or a number of {unit_name}, "
        f"got {describe(value)}"
    )


def to_size(value: object) -> int:
    """Bytes from an int or a string such as "256MB", "10KB", "1GB" (units of 1024)."""
    if _is_number(value) and float(value).is_integer():
        return int(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match and match.group(2).lower() in _SIZE_UNITS:
            size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
            if size.is_integer():  # "2.5" bytes is refused, as the number 2.5 is
                return int(size)
    raise ValueError(
        f"expected a size such as 1024, 10KB, 256MB or 1GB, got {describe(value)}"
    )


def format_size(size: int) -> str:
    """1048576 -> "1MB", 1000 -> "1000B": the largest unit that divides it exactly."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def to_int(value: object) -> int:
    """An integer, also from a whole float (32.0) or a string of digits ("32")."""
    if isinstance(value, int) and _is_number(value):
        return value
    if _is_number(value) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
        return int(value)
    raise ValueError(f"expected an integer, got {describe(value)}")


def to_float(value: object) -> float:
    """A number, also from a numeric string."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    raise ValueError(f"expected a number, got {describe(value)}")


def to_bool(value: object) -> bool:
    """true/false, also the HOCON strings yes/no/on/off in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"expected true or false, got {describe(value)}")


def to_str(value: object) -> str:
    """A string; unquoted numbers (`password = 123456`) are taken as the text written."""
    if isinstance(value, str):
        return value
    if _is_number(value):
        return str(value)
    raise ValueError(f"expected a string, got {describe(value)}")
