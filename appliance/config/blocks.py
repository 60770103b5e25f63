"""Readers for the broker's own blocks of nanomq.conf: listeners, mqtt, limits, log, http_server.

Keys mean what they mean in NanoMQ 0.19+ (HOCON form) and are declared in model.py (or
here, for the listener keys that are not one field each). Keys NanoMQ has and we do not
implement are a warning each; unknown keys too (see reader.Section.finish).
"""

from __future__ import annotations

from pyhocon import ConfigTree

from .keys import Bind, Bool, Key
from .model import HttpServerConfig, LimitsConfig, ListenerConfig, LogConfig, MqttConfig, TlsConfig
from .reader import MISSING, Section, read_block

TCP_SCHEMES = ("nmq-tcp", "tcp", "mqtt-tcp")
TLS_SCHEMES = ("tls+nmq-tcp", "tls", "ssl", "mqtts")

TCP_BIND = Key("listeners.tcp[.<name>].bind", Bind(TCP_SCHEMES), "0.0.0.0:1883",
               'MQTT over TCP; more listeners as listeners.tcp.<name>; "[::]:1883" for IPv6. '
               "No listeners block: this one.", env="NANOMQ_BROKER_URL")
TCP_ENABLE = Key("listeners.tcp[.<name>].enable", Bool(), True, "false skips that listener.", env="NANOMQ_TCP_ENABLE")
SSL_BIND = Key("listeners.ssl[.<name>].bind", Bind(TLS_SCHEMES), "0.0.0.0:8883",
               "MQTT over TLS 1.2+; needs certfile and keyfile.", env="NANOMQ_TLS_URL")
SSL_ENABLE = Key("listeners.ssl[.<name>].enable", Bool(), True, "false skips that listener.", env="NANOMQ_TLS_ENABLE")
HTTP_SERVER_ENABLE = Key("http_server.enable", Bool(), True,
                         "false turns the HTTP server off (NanoMQ 0.14-0.18's key; 0.19+: the block's presence).",
                         env="NANOMQ_HTTP_SERVER_ENABLE")
LISTENER_KEYS = (TCP_BIND, TCP_ENABLE, SSL_BIND, SSL_ENABLE)


def read_listeners(root: Section) -> tuple[ListenerConfig, ...]:
    """`listeners.tcp[.<name>] { bind }` and `listeners.ssl[.<name>] { bind, certfile, ... }`;
    no block: tcp on 0.0.0.0:1883."""
    listeners = root.child("listeners")
    if listeners is None:
        return (ListenerConfig("tcp", "0.0.0.0", 1883),)
    found: list[ListenerConfig] = []
    for kind, bind_key, enable_key in (("tcp", TCP_BIND, TCP_ENABLE), ("ssl", SSL_BIND, SSL_ENABLE)):
        block = listeners.child(kind)
        if block is None:
            continue
        named = [name for name in block.keys() if isinstance(block.values[name], ConfigTree)]
        if block.has("bind") or not named or block.has("certfile"):
            # As in NanoMQ, a listener block without bind keeps the default address.
            found += _listener(block, kind, bind_key, enable_key, unnamed=True)
        for name in named:
            found += _listener(block.child(name), f"{kind}.{name}", bind_key, enable_key, unnamed=False)
    listeners.not_implemented("ws", "wss", "quic")
    _check_distinct(root, found)
    if not found:
        root.ctx.warn(root.at("listeners"), "no MQTT listener is enabled")
    return tuple(found)


def _listener(section: Section, name: str, bind_key: Key, enable_key: Key, unnamed: bool) -> list[ListenerConfig]:
    if not section.get("enable", True, enable_key.parse):
        section.seen.update(section.keys())  # a listener turned off is not validated
        return []
    bind = section.get("bind", MISSING, bind_key.parse)
    if bind is MISSING:
        if not unnamed:
            raise section.fail(None, 'a listener needs bind = "host:port"')
        bind = bind_key.kind.convert(bind_key.default)
    tls = _tls(section) if name.startswith("ssl") else None
    return [ListenerConfig(name, *bind, tls)]


def _tls(section: Section) -> TlsConfig:
    """The TLS keys of an ssl listener; the files must be readable now, not at the first client."""
    for name in ("certfile", "keyfile"):
        if not section.has(name):
            raise section.fail(name, f'an ssl listener needs {name} = "/path/to/{name[:-4]}.pem"')
    config = read_block(section, TlsConfig)
    for name in ("certfile", "keyfile", "cacertfile"):
        check_readable(section, name, getattr(config, name))
    return config


def check_readable(section: Section, name: str, path: str | None) -> None:
    """A file named by key `name` must be readable at start-up, not at the first client."""
    if path is None:
        return
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise section.fail(name, f"cannot read {path!r}: {exc.strerror or exc}") from None


def _check_distinct(root: Section, listeners: list[ListenerConfig]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for listener in listeners:
        address = (listener.host, listener.port)
        if listener.port and address in seen:
            path = ("listeners",) + tuple(listener.name.split(".", 1)) + ("bind",)
            raise root.ctx.error(path, f"same address as listener {seen[address]}")
        seen[address] = listener.name


def read_mqtt(root: Section) -> MqttConfig:
    """The `mqtt { ... }` block; absent keys keep MqttConfig's defaults."""
    mqtt = root.child("mqtt")
    if mqtt is not None:
        mqtt.not_implemented(
            "session",
            note="it is NanoMQ's 0.14-0.18 form; 0.19+ keys go directly in mqtt { }, "
            "e.g. msq_len is max_mqueue_len and qos_duration is retry_interval",
        )
    return read_block(mqtt, MqttConfig)


def read_limits(root: Section) -> LimitsConfig:
    """The `limits { ... }` block (ours); absent keys keep LimitsConfig's defaults."""
    return read_block(root.child("limits"), LimitsConfig)


def read_log(root: Section) -> LogConfig:
    """The `log { ... }` block: targets, level, file and rotation."""
    return read_block(root.child("log"), LogConfig)


def read_http_server(root: Section) -> HttpServerConfig | None:
    """The `http_server { ... }` block; absent or `enable = false`: no HTTP server (as NanoMQ)."""
    http = root.child("http_server")
    if http is None:
        return None
    if not http.get("enable", True, HTTP_SERVER_ENABLE.parse):
        http.seen.update(http.keys())  # a disabled block's keys are not worth warning about
        return None
    return read_block(http, HttpServerConfig)


# Top-level blocks NanoMQ knows that this appliance does not implement.
UNIMPLEMENTED_BLOCKS = (
    "system", "authorization", "bridge", "rules",
    "exchange_client", "parquet", "plugin", "preset", "vsomeip", "gateway",
)


def warn_unimplemented_blocks(root: Section) -> None:
    root.not_implemented(*UNIMPLEMENTED_BLOCKS)

