"""Line numbers of the keys in a HOCON text, for error messages.

pyhocon 0.3.63 keeps no source positions on parsed values, so after pyhocon has
accepted a text this scanner walks it once and records the line where each key path
is defined: the last definition of a key (HOCON's "later wins"), the first mention of
an enclosing object. Array elements are path components of type int.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field

Path = tuple  # of str (object keys) and int (array indexes)


@dataclass
class Positions:
    """What the scanner learnt about a text."""

    lines: dict[Path, int] = field(default_factory=dict)  # key path -> 1-based line
    # Values written as several objects on one line, `{...} {...}`, which HOCON merges
    # into one object: inside an array that silently turns two elements into one.
    merged: set[Path] = field(default_factory=set)
    # Key paths written under another name (NanoMQ's old format: mqtt.max_mqueue_len was
    # msq_len=), so messages can say what the user wrote.
    written: dict[Path, str] = field(default_factory=dict)


def scan(text: str) -> Positions:
    """The positions of the key paths written in `text` (which pyhocon has accepted)."""
    scanner = _Scanner(text)
    scanner.skip()
    if scanner.peek() == "{":  # a root object in braces
        scanner.pos += 1
    scanner.object_body(())
    return scanner.found


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found = Positions()
        self.lines = self.found.lines
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, newlines: bool = True, commas: bool = True) -> None:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t\r\ufeff" or (newlines and c == "\n") or (commas and c == ","):
                self.pos += 1
            elif c == "#" or text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def object_body(self, prefix: Path) -> None:
        text = self.text
        while True:
            self.skip()
            c = self.peek()
            if not c:
                return
            if c in "}]":
                self.pos += 1
                return
            if text.startswith("include", self.pos) and text[self.pos + 7 : self.pos + 8] in " \t(\"":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
                continue
            start = self.pos
            keys = self.key()
            if not keys:
                self.pos = max(self.pos, start + 1)
                continue
            path = prefix + keys
            line = self.line(start)
            for depth in range(len(prefix) + 1, len(path)):
                self.lines.setdefault(path[:depth], line)
            self.lines[path] = line
            self.skip(commas=False)
            if text.startswith("+=", self.pos):
                self.pos += 2
            elif self.peek() in ("=", ":"):
                self.pos += 1
            self.value(path)

    def key(self) -> Path:
        text = self.text
        parts: list[str] = []
        current = ""
        while self.pos < len(text):
            c = text[self.pos]
            if c == '"':
                current += self.quoted()
            elif c == ".":
                parts.append(current)
                current = ""
                self.pos += 1
            elif c in " \t\r\n=:{}[],#+" or text.startswith("//", self.pos):
                break
            else:
                current += c
                self.pos += 1
        parts.append(current)
        return tuple(parts) if any(parts) else ()

    def quoted(self) -> str:
        text = self.text
        if text.startswith('"""', self.pos):
            end = text.find('"""', self.pos + 3)
            end = len(text) if end < 0 else end
            value = text[self.pos + 3 : end]
            self.pos = end + 3
            return value
        start = self.pos
        self.pos += 1
        while self.pos < len(text) and text[self.pos] not in '"\n':
            self.pos += 2 if text[self.pos] == "\\" else 1
        self.pos += 1
        try:
            return json.loads(text[start : self.pos])
        except ValueError:
            return text[start + 1 : self.pos - 1]

    def value(self, path: Path) -> None:
        text = self.text
        self.skip(commas=False)
        objects = 0
        while self.pos < len(text):
            c = text[self.pos]
            if c == "{":
                objects += 1
                if objects == 2:
                    self.found.merged.add(path)
                self.pos += 1
                self.object_body(path)
            elif c == "[":
                self.pos += 1
                self.array(path)
            elif c == '"':
                self.quoted()
            elif text.startswith("${", self.pos):
                end = text.find("}", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif c in "\n,}]#" or text.startswith("//", self.pos):
                return
            else:
                self.pos += 1

    def array(self, path: Path) -> None:
        index = 0
        while True:
            self.skip()
            c = self.peek()
            if not c:
                return
            if c == "]":
                self.pos += 1
                return
            if c == "}":  # unbalanced; pyhocon would have refused it
                return
            start = self.pos
            self.lines[path + (index,)] = self.line(start)
            self.value(path + (index,))
            if self.pos == start:
                self.pos += 1
            index += 1
