"""Readers for the broker's own blocks of nanomq.conf: listeners, mqtt, limits, log, http_server.

Keys mean what they mean in NanoMQ 0.19+ (HOCON form) and are declared in model.py (or
here, for the listener keys that are not one field each). Keys NanoMQ has and we do not
implement are a warning each; unknown keys too (see reader.Section.finish).
"""

from __future__ import annotations

from pyhocon import ConfigTree

from .keys import Bind, Bool, Key, Structure, WebSocketBind, field_keys
from .model import (
    HttpServerConfig, LimitsConfig, ListenerConfig, LogConfig, MqttConfig, TlsConfig, WebSocketConfig,
)
from .reader import MISSING, Section, read_block

TCP_SCHEMES = ("nmq-tcp", "tcp", "mqtt-tcp")
TLS_SCHEMES = ("tls+nmq-tcp", "tls", "ssl", "mqtts")
WS_SCHEMES = ("nmq-ws", "ws")
WSS_SCHEMES = ("nmq-wss", "wss")

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
WS_BIND = Key("listeners.ws[.<name>].bind", WebSocketBind(WS_SCHEMES), "0.0.0.0:8083/mqtt",
              "MQTT over WebSocket (subprotocol mqtt); no path means /mqtt; more as listeners.ws.<name>; "
              "the variable alone turns it on.", env="NANOMQ_WEBSOCKET_URL")
WS_ENABLE = Key("listeners.ws[.<name>].enable", Bool(), True,
                "false skips that listener; the variable true turns listeners.ws on at its default bind.",
                env="NANOMQ_WEBSOCKET_ENABLE")
WSS_BIND = Key("listeners.wss[.<name>].bind", WebSocketBind(WSS_SCHEMES), "0.0.0.0:8084/mqtt",
               "MQTT over secure WebSocket; more as listeners.wss.<name>; the variable alone turns it on.",
               env="NANOMQ_WEBSOCKET_TLS_URL")
WSS_ENABLE = Key("listeners.wss[.<name>].enable", Bool(), True,
                 "false skips that listener; the variable true turns listeners.wss on with listeners.ssl's "
                 "certificate.", env="NANOMQ_WEBSOCKET_TLS_ENABLE")
WSS_TLS = Key("listeners.wss[.<name>].<TLS key>", Structure("as listeners.ssl"), None,
              "certfile, keyfile, key_password, cacertfile, verify_peer, fail_if_no_peer_cert, "
              "peer_cert_as_username: each one not given is listeners.ssl's, as NanoMQ takes them all.",
              shown_default="listeners.ssl's")
LISTENER_KEYS = (TCP_BIND, TCP_ENABLE, SSL_BIND, SSL_ENABLE)
WEBSOCKET_KEYS = (WS_BIND, WS_ENABLE, WSS_BIND, WSS_ENABLE, WSS_TLS)
_KINDS = (("tcp", TCP_BIND, TCP_ENABLE), ("ssl", SSL_BIND, SSL_ENABLE),
          ("ws", WS_BIND, WS_ENABLE), ("wss", WSS_BIND, WSS_ENABLE))


def read_listeners(root: Section) -> tuple[ListenerConfig, ...]:
    """`listeners.tcp|ws[.<name>] { bind }` and `listeners.ssl|wss[.<name>] { bind, certfile, ... }`;
    no block: tcp on 0.0.0.0:1883."""
    listeners = root.child("listeners")
    if listeners is None:
        return (ListenerConfig("tcp", "0.0.0.0", 1883),)
    found: list[ListenerConfig] = []
    for kind, bind_key, enable_key in _KINDS:
        block = listeners.child(kind)
        if block is None:
            continue
        named = [name for name in block.keys() if isinstance(block.values[name], ConfigTree)]
        # NanoMQ's wss takes its certificate from listeners.ssl; ours may also name its own.
        inherited = next((listener.tls for listener in found if listener.name == "ssl"), None)
        if block.has("bind") or not named or block.has("certfile"):
            # As in NanoMQ, a listener block without bind keeps the default address.
            found += _listener(block, kind, bind_key, enable_key, unnamed=True, inherited_tls=inherited)
        for name in named:
            found += _listener(block.child(name), f"{kind}.{name}", bind_key, enable_key, unnamed=False,
                               inherited_tls=inherited)
    listeners.not_implemented("quic")
    _check_distinct(root, found)
    if not found:
        root.ctx.warn(root.at("listeners"), "no MQTT listener is enabled")
    return tuple(found)


def _listener(section: Section, name: str, bind_key: Key, enable_key: Key, unnamed: bool,
              inherited_tls: TlsConfig | None) -> list[ListenerConfig]:
    if not section.get("enable", True, enable_key.parse):
        section.seen.update(section.keys())  # a listener turned off is not validated
        return []
    bind = section.get("bind", MISSING, bind_key.parse)
    if bind is MISSING:
        if not unnamed:
            form = '"host:port/path"' if isinstance(bind_key.kind, WebSocketBind) else '"host:port"'
            raise section.fail(None, f"a listener needs bind = {form}")
        bind = bind_key.kind.convert(bind_key.default)
    kind = name.split(".", 1)[0]
    tls = _tls(section) if kind == "ssl" else _wss_tls(section, inherited_tls) if kind == "wss" else None
    if kind in ("ws", "wss"):
        host, port, path = bind
        return [ListenerConfig(name, host, port, tls, read_block(section, WebSocketConfig, path=path))]
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


def _wss_tls(section: Section, inherited: TlsConfig | None) -> TlsConfig:
    """The TLS keys of a wss listener: each one it does not name is listeners.ssl's, as
    NanoMQ's wss (which reads only bind) takes them all."""
    for name in ("certfile", "keyfile"):
        if not section.has(name) and inherited is None:
            raise section.fail(name, f'a wss listener needs {name} = "/path/to/{name[:-4]}.pem" '
                               "(here or in listeners.ssl)")
    given = {name: getattr(inherited, name) for name, _ in field_keys(TlsConfig)
             if inherited is not None and not section.has(name)}
    config = read_block(section, TlsConfig, **given)
    for name in ("certfile", "keyfile", "cacertfile"):
        if name not in given:
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

