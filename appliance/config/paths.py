"""The directories a valid config names must be usable now, so check-config finds what
`start` would trip on: a log directory that does not exist, a spool_dir that is a file.

Checked after the environment is applied (a variable may name the directory); the error
names the variable, or the file, line and key.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping

from .errors import ConfigError
from .keys import Key, key_of
from .model import Config, LogConfig, WebhookQueue


def check_paths(config: Config, env: Mapping[str, str], error_at: Callable[[tuple, str], ConfigError]) -> None:
    """ConfigError if a directory the config names cannot be used as it says."""

    def fail(spec: Key, path: tuple, problem: str) -> ConfigError:
        if spec.env and spec.env in env:
            return ConfigError("environment", None, f"{spec.env} ({spec.path})", problem)
        return error_at(path, problem)

    if "file" in config.log.to:
        # As in NanoMQ, a dir written with a trailing / is created if missing.
        problem = _directory_problem(config.log.dir, create=config.log.dir.endswith("/"))
        if problem:
            raise fail(key_of(LogConfig, "dir"), ("log", "dir"), f"{problem} (log.to includes file)")
        log_file = os.path.join(config.log.dir, config.log.file)
        if os.path.isdir(log_file) or (os.path.exists(log_file) and not os.access(log_file, os.W_OK)):
            raise fail(key_of(LogConfig, "file"), ("log", "file"), f"{log_file} is not a writable file")
    if config.webhook is not None and config.webhook.queue.spool_dir:
        problem = _directory_problem(config.webhook.queue.spool_dir, create=True)
        if problem:
            raise fail(key_of(WebhookQueue, "spool_dir"), ("webhook", "queue", "spool_dir"), problem)


def _directory_problem(path: str, create: bool) -> str | None:
    """Why `path` cannot be used as a writable directory (created if `create`), or None."""
    if os.path.isdir(path):
        return None if os.access(path, os.W_OK | os.X_OK) else f"{path} is not writable"
    if os.path.exists(path):
        return f"{path} is a file, not a directory"
    if not create:
        return f"{path} does not exist"
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{path} cannot be created: {parent} is a file"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} does not exist and cannot be created ({parent} is not writable)"
    return None
