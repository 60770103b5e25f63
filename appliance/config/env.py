"""NanoMQ's environment variables, applied over the file for the keys this appliance supports.

Each variable is the `env` of a declared key (keys.py) and is parsed by that key's kind, so
it accepts exactly what the file accepts for that key. A bad value is a ConfigError naming
the variable and the key; a NanoMQ variable for a feature we lack is a warning (unless it
only turns that feature off). NANOMQ_CONF_PATH is the CLI's business (default_config_path).
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Mapping

from .blocks import (
    HTTP_SERVER_ENABLE, SSL_BIND, SSL_ENABLE, TCP_BIND, TCP_ENABLE, WS_BIND, WS_ENABLE, WSS_BIND, WSS_ENABLE,
)
from .errors import ConfigError
from .keys import Block, Invalid, Key, field_keys, key_of
from .model import AuthConfig, Config, HttpServerConfig, ListenerConfig, TlsConfig, WebSocketConfig

SOURCE = "environment"

# Variables NanoMQ reads that map onto nothing here.
UNIMPLEMENTED = (
    "NANOMQ_DAEMON", "NANOMQ_NUM_TASKQ_THREAD", "NANOMQ_MAX_TASKQ_THREAD", "NANOMQ_PARALLEL",
    "NANOMQ_CLIENT_MAX_PACKET_SIZE", "NANOMQ_MSG_PERSISTENCE", "NANOMQ_HTTP_SERVER_PARALLEL",
    "NANOMQ_HTTP_SERVER_JWT_PUBLIC_KEYFILE", "NANOMQ_HTTP_SERVER_JWT_PRIVATE_KEYFILE",
    "NANOMQ_LOG_UDS_ADDR", "NANOMQ_VIN", "NANOMQ_PID_FILE",
    "NANOMQ_BRIDGE_CONF_PATH", "NANOMQ_WEBHOOK_CONF_PATH", "NANOMQ_AUTH_HTTP_CONF_PATH",
    "NANOMQ_AUTH_CONF_PATH", "NANOMQ_RULE_ENGINE_CONF_PATH",
)
HANDLED_ELSEWHERE = ("NANOMQ_CONF_PATH",)
CREATED_BY_ENV = {"auth": AuthConfig}  # absent blocks a variable may bring into being
TLS_FIELDS = tuple(name for name, spec in field_keys(TlsConfig) if spec.env)


def _error(spec: Key, problem: str) -> ConfigError:
    # NanoMQ's variables set the unnamed listener: listeners.tcp[.<name>].bind -> listeners.tcp.bind
    return ConfigError(SOURCE, None, f"{spec.env} ({spec.path.replace('[.<name>]', '')})", problem)


class _Reader:
    """Reads the variables of declared keys from one environment, noting what it used."""

    def __init__(self, env: Mapping[str, str], warnings: list[str]) -> None:
        self.env, self.warnings = env, warnings
        self.used: set[str] = set()

    def get(self, spec: Key):
        """The parsed value of `spec`'s variable, or None when it is not set."""
        if spec.env not in self.env:
            return None
        self.used.add(spec.env)
        try:
            value = spec.parse(self.env[spec.env])
        except ValueError as exc:
            raise _error(spec, str(exc)) from None
        for note in spec.kind.notes(self.env[spec.env]):
            self.warnings.append(f"{SOURCE}: {spec.env}: {note}")
        return value

    def block(self, block: Block) -> Block:
        """`block` with its keys' variables applied, nested blocks included."""
        cls = type(block)
        changes = {}
        for name, spec in field_keys(cls):
            if spec.env:
                value = self.get(spec)
                if value is not None:
                    changes[name] = value
        for f in dataclasses.fields(cls):
            value = getattr(block, f.name)
            if isinstance(value, Block):
                updated = self.block(value)
                if updated is not value:
                    changes[f.name] = updated
        if not changes:
            return block
        try:
            return replace(block, **changes)
        except Invalid as exc:
            spec = key_of(cls, exc.field) if exc.field else None
            raise ConfigError(SOURCE, None, spec.path if spec else cls.__section__, str(exc)) from None

    def skipped(self, specs, reason: str) -> None:
        for spec in specs:
            if spec.env in self.env:
                self.get(spec)  # a bad value is an error even where it would not apply
                self.warnings.append(f"{SOURCE}: {spec.env} is ignored: {reason}")


def apply_env(config: Config, env: Mapping[str, str], warnings: list[str]) -> Config:
    """`config` with NanoMQ's environment overrides applied; warnings appended in place."""
    read = _Reader(env, warnings)
    listeners = _listeners(list(config.listeners), read)

    http = config.http_server
    enable = read.get(HTTP_SERVER_ENABLE)
    if enable is True and http is None:
        http = HttpServerConfig()
    elif enable is False:
        http = None
    if http is None:
        read.skipped([spec for _, spec in field_keys(HttpServerConfig)], "the HTTP server is off")
    changes: dict[str, object] = {"listeners": tuple(listeners), "http_server": http}
    for f in dataclasses.fields(Config):
        value = changes.get(f.name, getattr(config, f.name))
        if isinstance(value, Block):
            changes[f.name] = read.block(value)
        elif value is None and f.name in CREATED_BY_ENV:
            # e.g. NANOMQ_ALLOW_ANONYMOUS without an auth block, as NanoMQ's top-level key.
            empty = CREATED_BY_ENV[f.name]()
            made = read.block(empty)
            changes[f.name] = made if made is not empty else None
    config = replace(config, **changes)

    for name in sorted(env):
        if not name.startswith("NANOMQ_") or name in HANDLED_ELSEWHERE or name in read.used:
            continue
        if name in UNIMPLEMENTED:
            turned_off = name.endswith("_ENABLE") and env[name].strip().lower() in ("false", "no", "0", "")
            if not turned_off:
                warnings.append(f"{SOURCE}: {name} is not implemented (ignored)")
        else:
            warnings.append(f"{SOURCE}: unknown NanoMQ variable {name} (ignored)")
    return config


def _listeners(listeners: list[ListenerConfig], read: _Reader) -> list[ListenerConfig]:
    url = read.get(TCP_BIND)
    if url is not None:
        replaced = ListenerConfig("tcp", *url)
        names = [listener.name for listener in listeners]
        if "tcp" in names:
            listeners[names.index("tcp")] = replaced
        else:
            listeners.insert(0, replaced)
    if read.get(TCP_ENABLE) is False:
        listeners = [listener for listener in listeners if listener.name != "tcp"]
    _apply_tls(listeners, read)
    _apply_websocket(listeners, read)
    return listeners


def _apply_tls(listeners: list[ListenerConfig], read: _Reader) -> None:
    """NANOMQ_TLS_*: turn the unnamed ssl listener on or off, or change its keys."""
    names = [listener.name for listener in listeners]
    current = listeners[names.index("ssl")] if "ssl" in names else None
    enable = read.get(SSL_ENABLE)
    tls_keys = [key_of(TlsConfig, name) for name in TLS_FIELDS]
    if enable is False:
        if current is not None:
            listeners.remove(current)
        read.skipped(tls_keys + [SSL_BIND], "NANOMQ_TLS_ENABLE is false")
        return
    if current is None and not enable:
        read.skipped(tls_keys + [SSL_BIND], "no listeners.ssl and NANOMQ_TLS_ENABLE is not true")
        return
    changes = {name: value for name, spec in zip(TLS_FIELDS, tls_keys) if (value := read.get(spec)) is not None}
    url = read.get(SSL_BIND)
    if not changes and url is None and current is not None:
        return
    base = dataclasses.asdict(current.tls) if current is not None else {}
    fields = {**base, **changes}
    for name in ("certfile", "keyfile"):
        if not fields.get(name):
            raise _error(key_of(TlsConfig, name), "TLS needs NANOMQ_TLS_CERT_PATH and NANOMQ_TLS_KEY_PATH")
    try:
        tls = TlsConfig(**fields)
    except Invalid as exc:
        raise _error(key_of(TlsConfig, exc.field), str(exc)) from None
    host, port = url if url is not None else (
        (current.host, current.port) if current is not None else SSL_BIND.kind.convert(SSL_BIND.default))
    replaced = ListenerConfig("ssl", host, port, tls)
    if current is not None:
        listeners[listeners.index(current)] = replaced
    else:
        listeners.append(replaced)


def _apply_websocket(listeners: list[ListenerConfig], read: _Reader) -> None:
    """NANOMQ_WEBSOCKET_*: the unnamed ws and wss listeners on, off, or at another URL. As in
    NanoMQ, a URL alone turns its listener on; wss takes the ssl listener's TLS unless
    listeners.wss names its own."""
    for kind, enable_key, bind_key in (("ws", WS_ENABLE, WS_BIND), ("wss", WSS_ENABLE, WSS_BIND)):
        names = [listener.name for listener in listeners]
        current = listeners[names.index(kind)] if kind in names else None
        enable = read.get(enable_key)
        if enable is False:
            if current is not None:
                listeners.remove(current)
            read.skipped([bind_key], f"{enable_key.env} is false")
            continue
        url = read.get(bind_key)
        if url is None and (current is not None or not enable):
            continue
        host, port, path = url if url is not None else (
            (current.host, current.port, current.websocket.path) if current is not None
            else bind_key.kind.convert(bind_key.default))
        websocket = current.websocket if current is not None else WebSocketConfig()
        tls = None
        if kind == "wss":
            tls = current.tls if current is not None else next(
                (listener.tls for listener in listeners if listener.name == "ssl"), None)
            if tls is None:
                raise _error(bind_key if url is not None else enable_key,
                             "wss needs a certificate: listeners.ssl, or NANOMQ_TLS_ENABLE with "
                             "NANOMQ_TLS_CERT_PATH and NANOMQ_TLS_KEY_PATH")
        replaced = ListenerConfig(kind, host, port, tls, replace(websocket, path=path))
        if current is not None:
            listeners[listeners.index(current)] = replaced
        else:
            listeners.append(replaced)
