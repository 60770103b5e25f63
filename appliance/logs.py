"""Logging set up from the `log` block: console (stderr) and/or a rotating file."""

from __future__ import annotations

import logging
import logging.handlers
import os

from .config.model import LogConfig

# NanoMQ's level names; `trace` is finer than debug, `fatal` is critical.
LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(config: LogConfig) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(_FORMAT)
    handlers: list[logging.Handler] = []
    if "console" in config.to:
        handlers.append(logging.StreamHandler())
    if "file" in config.to:
        handlers.append(logging.handlers.RotatingFileHandler(
            os.path.join(config.dir, config.file),
            maxBytes=config.rotation.size,
            backupCount=config.rotation.count,
        ))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(LEVELS[config.level])
