"""Load nanomq.conf (HOCON, via pyhocon) and the NanoMQ environment into a validated Config.

As in NanoMQ: an absent `http_server` block means no HTTP server (the shipped
etc/nanomq.conf, the image and the chart have one, for /metrics and the probes);
NANOMQ_HTTP_SERVER_ENABLE=true starts one with its defaults. An absent `listeners` block
means tcp on 0.0.0.0:1883, an absent `webhook` block means no webhook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

import pyparsing
from pyhocon import ConfigFactory, ConfigTree
from pyhocon.exceptions import ConfigException

from .auth import read_auth
from .bridges import read_bridges
from .sqlite import read_sqlite
from .persistence import read_persistence
from .blocks import read_http_server, read_limits, read_listeners, read_log, read_mqtt, warn_unimplemented_blocks
from .env import apply_env
from .errors import ConfigError
from .includes import check_includes
from .legacy import OLD_FORMAT_NOTE, old_format_line, read_old_format
from .model import Config
from .paths import check_paths
from .parse_errors import internal_error, key_at, pyhocon_error, syntax_error
from .positions import scan
from .reader import Context, Section
from .webhook import DOC_FORM_PROBLEM, read_webhook

DEFAULT_CONFIG_PATH = "etc/nanomq.conf"

# Each Config field and the reader of its block, in the order their errors are reported.
# A new block adds its reader here (and its model class to reference.SOURCES).
BLOCK_READERS = (
    ("listeners", read_listeners),
    ("mqtt", read_mqtt),
    ("log", read_log),
    ("http_server", read_http_server),
    ("webhook", read_webhook),
    ("auth", read_auth),
    ("limits", read_limits),
    ("bridges", read_bridges),
    ("sqlite", read_sqlite),
    ("persistence", read_persistence),
)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated Config and the warnings met on the way (unknown or unimplemented keys...)."""

    config: Config
    warnings: list[str] = field(default_factory=list)
    context: Context | None = field(default=None, repr=False, compare=False)

    def error(self, path: str, problem: str) -> ConfigError:
        """A one-line error about key `path` ("webhook.queue.spool_dir") found after loading,
        e.g. at start-up: file, line and key where the file sets it."""
        if self.context is None:
            return ConfigError(self.config.source or "<config>", None, path, problem)
        return self.context.error(tuple(path.split(".")), problem)


def default_config_path(env: Mapping[str, str] = os.environ) -> str:
    """NANOMQ_CONF_PATH if set (as in NanoMQ), else etc/nanomq.conf."""
    return env.get("NANOMQ_CONF_PATH") or DEFAULT_CONFIG_PATH


def load_config(path: str, env: Mapping[str, str] = os.environ, old_format: bool | None = None) -> LoadedConfig:
    """Read, parse and validate the file at `path`, then apply NanoMQ's environment overrides.
    `old_format`: the file is NanoMQ's pre-0.14 key=value form (None: recognise it)."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError(path, None, None, f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, None, "not UTF-8 text") from None
    return load_config_text(text, source=path, env=env, basedir=os.path.dirname(os.path.abspath(path)),
                            old_format=old_format)


def load_config_text(
    text: str,
    source: str = "<string>",
    env: Mapping[str, str] = os.environ,
    basedir: str | None = None,
    old_format: bool | None = None,
) -> LoadedConfig:
    """As load_config, from a string; `basedir` resolves relative includes."""
    if old_format is None:
        old_format = old_format_line(text) is not None
    if old_format:
        tree, positions, notes = read_old_format(text, source)
        ctx = Context(source, positions)
        ctx.warn((), OLD_FORMAT_NOTE)
        for line, note in notes:
            ctx.warn_line(line, note)
    else:
        tree = _parse(text, source, basedir)
        ctx = Context(source, scan(text))
    root = Section(ctx, tree, ())
    config = Config(**{name: read(root) for name, read in BLOCK_READERS}, source=source)
    warn_unimplemented_blocks(root)
    root.finish()
    warnings = ctx.warnings
    config = apply_env(config, env, warnings)
    check_paths(config, env, ctx.error)
    return LoadedConfig(config, warnings, ctx)


def _parse(text: str, source: str, basedir: str | None) -> ConfigTree:
    """The pyhocon tree of `text`, after checking that every include can be read."""
    check_includes(text, source, basedir, _pyhocon, key_at)
    return _pyhocon(text, source, basedir)


def _pyhocon(text: str, source: str, basedir: str | None) -> ConfigTree:
    try:
        tree = ConfigFactory.parse_string(text, basedir=basedir)
    except pyparsing.ParseBaseException as exc:
        raise syntax_error(text, source, exc, DOC_FORM_PROBLEM) from None
    except ConfigException as exc:
        raise pyhocon_error(text, source, exc) from None
    except RecursionError:
        raise ConfigError(source, None, None, "nested too deeply (or includes itself)") from None
    except Exception as exc:  # noqa: BLE001 - pyhocon fails on some merges with internal errors
        # e.g. `mqtt = []` then `mqtt.x = 1` raises TypeError inside pyhocon 0.3.63.
        raise internal_error(text, source, exc) from None
    if not isinstance(tree, ConfigTree):  # a file that is one bare list or value
        raise ConfigError(source, None, None, "expected key = value pairs at the top level")
    return tree
