"""Load nanomq.conf (HOCON, via pyhocon) and the NanoMQ environment into a validated Config.

An absent `http_server` block means the HTTP server runs with its defaults (port 8081 on
every interface: /metrics, /healthz, /readyz and NanoMQ's /api/v4), because the
appliance is scraped and probed by default; `http_server.enable = false` (NanoMQ's
pre-0.19 key) or NANOMQ_HTTP_SERVER_ENABLE=false turns it off. NanoMQ itself runs no
HTTP server without the block. An absent `listeners` block means tcp on 0.0.0.0:1883,
an absent `webhook` block means no webhook.
"""

from __future__ import annotations

import logging
import os
import re
import warnings as py_warnings
from dataclasses import dataclass, field
from typing import Mapping

import pyparsing
from pyhocon import ConfigFactory, ConfigTree
from pyhocon.exceptions import ConfigException

from .auth import read_auth
from .bridges import read_bridges
from .blocks import read_http_server, read_limits, read_listeners, read_log, read_mqtt, warn_unimplemented_blocks
from .env import apply_env
from .errors import ConfigError
from .model import Config
from .positions import scan
from .reader import Context, Section
from .webhook import DOC_FORM_PROBLEM, read_webhook

DEFAULT_CONFIG_PATH = "etc/nanomq.conf"


@dataclass(frozen=True)
class LoadedConfig:
    """A validated Config and the warnings met on the way (unknown or unimplemented keys...)."""

    config: Config
    warnings: list[str] = field(default_factory=list)


def default_config_path(env: Mapping[str, str] = os.environ) -> str:
    """NANOMQ_CONF_PATH if set (as in NanoMQ), else etc/nanomq.conf."""
    return env.get("NANOMQ_CONF_PATH") or DEFAULT_CONFIG_PATH


def load_config(path: str, env: Mapping[str, str] = os.environ) -> LoadedConfig:
    """Read, parse and validate the file at `path`, then apply NanoMQ's environment overrides."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError(path, None, None, f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, None, "not UTF-8 text") from None
    return load_config_text(text, source=path, env=env, basedir=os.path.dirname(os.path.abspath(path)))


def load_config_text(
    text: str,
    source: str = "<string>",
    env: Mapping[str, str] = os.environ,
    basedir: str | None = None,
) -> LoadedConfig:
    """As load_config, from a string; `basedir` resolves relative includes."""
    include_warnings: list[str] = []
    tree = _parse(text, source, basedir, include_warnings)
    ctx = Context(source, scan(text))
    root = Section(ctx, tree, ())
    config = Config(
        listeners=read_listeners(root),
        mqtt=read_mqtt(root),
        log=read_log(root),
        http_server=read_http_server(root),
        webhook=read_webhook(root),
        auth=read_auth(root),
        limits=read_limits(root),
        bridges=read_bridges(root),
        source=source,
    )
    warn_unimplemented_blocks(root)
    root.finish()
    warnings = include_warnings + ctx.warnings
    config = apply_env(config, env, warnings)
    return LoadedConfig(config, warnings)


class _IncludeWarnings(logging.Handler):
    """Collects pyhocon's "Cannot include file" log records as our warnings."""

    def __init__(self, source: str, warnings: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.source, self.warnings = source, warnings

    def emit(self, record: logging.LogRecord) -> None:
        self.warnings.append(f"{self.source}: {record.getMessage()}")


def _parse(text: str, source: str, basedir: str | None, warnings: list[str]) -> ConfigTree:
    logger = logging.getLogger("pyhocon.config_parser")
    handler = _IncludeWarnings(source, warnings)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        with py_warnings.catch_warnings():
            # pyhocon 0.3.63 calls the deprecated logger.warn for a missing include.
            py_warnings.simplefilter("ignore", DeprecationWarning)
            tree = ConfigFactory.parse_string(text, basedir=basedir)
    except pyparsing.ParseBaseException as exc:
        raise _syntax_error(text, source, exc) from None
    except ConfigException as exc:
        raise _pyhocon_error(source, exc) from None
    except RecursionError:
        raise ConfigError(source, None, None, "nested too deeply (or includes itself)") from None
    except Exception as exc:  # noqa: BLE001 - pyhocon fails on some merges with internal errors
        # e.g. `mqtt = []` then `mqtt.x = 1` raises TypeError inside pyhocon 0.3.63.
        problem = (f"cannot be parsed ({type(exc).__name__} in pyhocon: {_shorten(str(exc))}); "
                   "is one key given both an object and another kind of value?")
        raise ConfigError(source, None, None, problem) from None
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    if not isinstance(tree, ConfigTree):  # a file that is one bare list or value
        raise ConfigError(source, None, None, "expected key = value pairs at the top level")
    return tree


def _syntax_error(text: str, source: str, exc: pyparsing.ParseBaseException) -> ConfigError:
    opening = text.rfind("[", 0, exc.loc)
    inside_events = opening >= 0 and "]" not in text[opening : exc.loc] and re.search(
        r"events\s*[=:]?\s*$", text[:opening]
    )
    if inside_events and re.match(r"\s*[\w.\"-]+\s*[=:]", exc.line or ""):
        return ConfigError(source, exc.lineno, "webhook.events", DOC_FORM_PROBLEM)
    found = str(exc).split("(at char")[0].strip()  # "Expected ']', found '='"
    return ConfigError(source, exc.lineno, None, f"syntax error: {found}", column=exc.col)


def _pyhocon_error(source: str, exc: ConfigException) -> ConfigError:
    message = str(exc.args[0] if exc.args else exc)
    position = re.search(r"\(line: (\d+), col: (\d+)\)", message)
    if position:
        message = _shorten(message.replace(position.group(0), "").strip())
        return ConfigError(source, int(position.group(1)), None, message, column=int(position.group(2)))
    return ConfigError(source, None, None, _shorten(message))


def _shorten(message: str, limit: int = 200) -> str:
    # pyhocon puts whole subtrees into some messages.
    return message if len(message) <= limit else message[: limit - 3] + "..."
