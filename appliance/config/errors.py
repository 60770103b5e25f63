"""The one exception the loader raises: a config problem as a single readable line."""

from __future__ import annotations


class ConfigError(Exception):
    """A bad config file or environment value: `<file>:<line>: <key.path>: <problem>`.

    `line` and `path` are None where they do not apply (an unreadable file, a
    syntax error outside any key); `column` is set for syntax errors only.
    """

    def __init__(
        self,
        source: str,
        line: int | None,
        path: str | None,
        problem: str,
        column: int | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.path = path
        self.problem = " ".join(problem.split())  # always one line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.path:
            return f"{where}: {self.path}: {self.problem}"
        return f"{where}: {self.problem}"


class StartupError(Exception):
    """A valid configuration the appliance cannot run with, found while starting: e.g. a
    webhook spool file that is not a spool. Raised by the part that found it with `path`
    the config key it comes from ("webhook.queue.spool_dir") and a one-line problem naming
    the file; the CLI prints it with the key's file and line, and exits 2."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem
