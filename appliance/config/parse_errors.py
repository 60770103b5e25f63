"""pyhocon's and pyparsing's failures as one readable line: file:line:col, the key when
there is one, and what was expected in words (never pyparsing's grammar dump, which runs
to kilobytes, nor a Python type name from inside pyhocon)."""

from __future__ import annotations

import re

import pyparsing
from pyhocon.exceptions import ConfigException

from .errors import ConfigError
from .positions import scan
from .reader import format_path

# pyparsing's "Expected X" for the X that HOCON's grammar can expect, in words.
_EXPECTED = {
    "'}'": "'}' to close an object (or a new line or ',' between its keys)",
    "']'": "']' to close a list (or ',' between its elements)",
    "end of text": "a new line or ',' after a value (a value that holds + : = { or // must be quoted)",
}
_AFTER_KEY = "'=', ':' or '{' after a key (a key that holds characters such as + must be quoted)"
_TYPES = {"ConfigList": "a list", "ConfigTree": "an object", "str": "a string", "ConfigValues": "a value",
          "int": "a number", "float": "a number", "bool": "a boolean", "NoneType": "null"}


def syntax_error(text: str, source: str, exc: pyparsing.ParseBaseException, doc_form_problem: str) -> ConfigError:
    opening = text.rfind("[", 0, exc.loc)
    inside_events = opening >= 0 and "]" not in text[opening : exc.loc] and re.search(
        r"events\s*[=:]?\s*$", text[:opening]
    )
    if inside_events and re.match(r"\s*[\w.\"-]+\s*[=:]", exc.line or ""):
        return ConfigError(source, exc.lineno, "webhook.events", doc_form_problem)
    expected = exc.msg[len("Expected "):] if exc.msg.startswith("Expected ") else exc.msg
    words = _EXPECTED.get(expected, _AFTER_KEY if len(expected) > 40 else expected)
    found = f"found {text[exc.loc]!r}" if exc.loc < len(text) else "found the end of the file"
    if exc.loc < len(text) and text[exc.loc] == "\n":
        found = "found the end of the line"
    return ConfigError(source, exc.lineno, None, f"syntax error: expected {words}; {found}", column=exc.col)


def pyhocon_error(text: str, source: str, exc: ConfigException) -> ConfigError:
    message = str(exc.args[0] if exc.args else exc)
    position = re.search(r"\(line: (\d+), col: (\d+)\)", message)
    line = int(position.group(1)) if position else None
    column = int(position.group(2)) if position else None
    wrong_type = re.search(r"of type (\w+) .*must be of type (\w+)", message)
    if wrong_type and line is not None:
        # e.g. `a = [1] "x"`: HOCON concatenates values written side by side.
        got, wanted = (_TYPES.get(name, "a value") for name in wrong_type.groups())
        problem = (f"{got} written next to {wanted} on one line (HOCON joins values written side by side); "
                   "write one value, or quote the whole value")
        return ConfigError(source, line, key_at(text, line), problem, column)
    if position:
        message = message.replace(position.group(0), "").strip()
    return ConfigError(source, line, key_at(text, line) if line else None, _shorten(message), column)


def internal_error(text: str, source: str, exc: Exception) -> ConfigError:
    """pyhocon failing inside (TypeError, OverflowError...): find the key that made it."""
    if isinstance(exc, OverflowError):
        match = re.search(r"\b\d{10,}(\.\d+)?\s*(ns|us|ms|s|m|h|d|w|[a-z]+)\b", text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            return ConfigError(source, line, key_at(text, line), f"{match.group(0)} is too large a duration")
    conflict = _object_and_value(text)
    if conflict is not None:
        path, line = conflict
        return ConfigError(source, line, format_path(path),
                           "is given a value here and keys below it elsewhere; an object cannot be both")
    problem = (f"cannot be parsed ({type(exc).__name__} in pyhocon: {_shorten(str(exc))}); "
               "is one key given both an object and another kind of value?")
    return ConfigError(source, None, None, problem)


def _positions(text: str):
    try:
        return scan(text).lines
    except Exception:  # noqa: BLE001 - the scanner is only a helper for a text pyhocon refused
        return {}


def key_at(text: str, line: int) -> str | None:
    """The path of the last key defined on `line`, if any."""
    paths = [path for path, at in _positions(text).items() if at == line and isinstance(path[-1], str)]
    return format_path(max(paths, key=len)) if paths else None


def _object_and_value(text: str):
    """(path, line) of a key given a plain value on one line and sub-keys elsewhere."""
    lines = _positions(text)
    text_lines = text.splitlines()
    for path, line in lines.items():
        if not any(len(other) > len(path) and other[: len(path)] == path for other in lines):
            continue
        last = str(path[-1])
        match = re.search(re.escape(last) + r'"?\s*[=:]\s*(\S)', text_lines[line - 1] if line <= len(text_lines) else "")
        if match and match.group(1) != "{":
            return path, line
    return None


def _shorten(message: str, limit: int = 200) -> str:
    # pyhocon puts whole subtrees into some messages.
    return message if len(message) <= limit else message[: limit - 3] + "..."
