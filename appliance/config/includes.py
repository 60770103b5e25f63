"""Every `include` of a config text must name a readable file.

pyhocon logs a warning for an include it cannot read and goes on without it, so a typo
in `acl = {include "nanomq_acl.cnf"}` used to start a broker with no ACL at all. Before
pyhocon parses a text, `check_includes` finds its include directives (outside strings and
comments), and for each one checks that the file can be read and parsed, recursively,
naming the file and line of the include that fails.
"""

from __future__ import annotations

import os
import re
from typing import Callable

from .errors import ConfigError

_DIRECTIVE = re.compile(
    r'include\s+(?:required\s*\(\s*)?(?:(file|url|classpath|package)\s*\(\s*)?"((?:[^"\\\n]|\\.)*)"'
)
MAX_DEPTH = 16


def find_includes(text: str) -> list[tuple[int, int, str, str]]:
    """(line, column, kind, name) of each include directive; kind is "" for a bare one."""
    found = []
    pos, line, line_start = 0, 1, 0
    length = len(text)
    while pos < length:
        c = text[pos]
        if c == "\n":
            line, line_start = line + 1, pos + 1
            pos += 1
        elif c == "#" or text.startswith("//", pos):
            end = text.find("\n", pos)
            pos = length if end < 0 else end
        elif text.startswith('"""', pos):
            end = text.find('"""', pos + 3)
            end = length if end < 0 else end + 3
            line += text.count("\n", pos, end)
            line_start = text.rfind("\n", 0, end) + 1 if "\n" in text[pos:end] else line_start
            pos = end
        elif c == '"':
            pos += 1
            while pos < length and text[pos] not in '"\n':
                pos += 2 if text[pos] == "\\" else 1
            pos += 1
        elif text.startswith("include", pos) and (pos == 0 or not (text[pos - 1].isalnum() or text[pos - 1] in "_-.")):
            match = _DIRECTIVE.match(text, pos)
            if match:
                found.append((line, pos - line_start + 1, match.group(1) or "", match.group(2)))
                pos = match.end()
            else:
                pos += len("include")
        else:
            pos += 1
    return found


def check_includes(
    text: str, source: str, basedir: str | None, parse: Callable[[str, str, str], None],
    key_at: Callable[[str, int], str | None], depth: int = 0,
) -> None:
    """ConfigError unless every include of `text` (and of what it includes) is readable and
    valid; `parse(text, source, basedir)` parses one included file (raising ConfigError),
    `key_at(text, line)` names the key an include is the value of."""
    for line, column, kind, name in find_includes(text):
        error = _Failure(source, line, column, key_at(text, line))
        where = f'include {kind + "(" if kind else ""}"{name}"{")" if kind else ""}'
        if kind in ("url", "classpath", "package") or name.startswith(("http://", "https://", "file://")):
            raise error(f"{where}: only includes of files are supported")
        path = name if basedir is None else os.path.join(basedir, name)
        if "*" in path or "?" in path:
            raise error(f"{where}: wildcard includes are not supported; name the file")
        try:
            with open(path, encoding="utf-8-sig") as file:
                included = file.read()
        except OSError as exc:
            problem = f"{where}: cannot read {path}: {exc.strerror or exc}"
            raise error(problem) from None
        except UnicodeDecodeError:
            raise error(f"{where}: {path} is not UTF-8 text") from None
        if depth >= MAX_DEPTH:
            raise error(f"{where}: includes nested too deeply (or including itself)")
        inner_dir = os.path.dirname(os.path.abspath(path))
        check_includes(included, path, inner_dir, parse, key_at, depth + 1)
        parse(included, path, inner_dir)


class _Failure:
    """Makes the ConfigError for one include directive."""

    def __init__(self, source: str, line: int, column: int, key: str | None) -> None:
        self.source, self.line, self.column, self.key = source, line, column, key

    def __call__(self, problem: str) -> ConfigError:
        return ConfigError(self.source, self.line, self.key, problem, self.column)
