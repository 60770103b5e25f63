"""Readers for the broker's own blocks of nanomq.conf: listeners, mqtt, log, http_server.

Keys mean what they mean in NanoMQ 0.19+ (HOCON form). Keys NanoMQ has and we do not
implement are a warning each; unknown keys too (see reader.Section.finish).
"""

from __future__ import annotations

import ipaddress
import re

from pyhocon import ConfigTree

from .model import (HttpServerConfig, LimitsConfig, ListenerConfig, LogConfig, LogRotation, MqttConfig, TlsConfig,
                    WebSocketConfig)
from .reader import MISSING, Section, format_path
from .units import describe

LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
LOG_TARGETS = ("console", "file")

# MQTT's largest packet: 1 byte type, 4 bytes remaining length, 268,435,455 bytes body.
MQTT_MAX_PACKET = 268_435_460
NANOMQ_MAX_PACKET = 260 * 1024 * 1024  # NanoMQ's documented ceiling for max_packet_size

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def parse_host(text: str) -> str:
    """An IPv4/IPv6 address (brackets optional) or a host name; ValueError otherwise."""
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _HOSTNAME.match(host):
        return host
    raise ValueError(f"expected an IP address or host name, got {text!r}")


def parse_bind(text: str) -> tuple[str, int]:
    """"host:port" or "[ipv6]:port" -> (host, port); ValueError with the expected form."""
    form = 'expected "host:port" such as "0.0.0.0:1883" or "[::]:1883"'
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{form}, got {text!r}")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{form}, got {text!r}")
        if ":" in host:
            raise ValueError(f"an IPv6 address needs brackets, e.g. \"[::]:1883\", got {text!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be 0..65535, got {text!r}")
    return parse_host(host), int(port)


def parse_ws_bind(text: str) -> tuple[str, int, str]:
    """"host:port/path" (NanoMQ's ws bind) -> (host, port, path); no path means /mqtt."""
    address, slash, path = text.partition("/")
    host, port = parse_bind(address)
    return host, port, "/" + path if slash else "/mqtt"


_LISTENER_KINDS = (("tcp", "0.0.0.0:1883"), ("ssl", "0.0.0.0:8883"),
                   ("ws", "0.0.0.0:8083/mqtt"), ("wss", "0.0.0.0:8084/mqtt"))


def read_listeners(root: Section) -> tuple[ListenerConfig, ...]:
    """`listeners.tcp|ws[.<name>] { bind }` and `listeners.ssl|wss[.<name>] { bind, certfile, ... }`;
    no block: tcp on 0.0.0.0:1883."""
    listeners = root.child("listeners")
    if listeners is None:
        return (ListenerConfig("tcp", "0.0.0.0", 1883),)
    found: list[ListenerConfig] = []
    for kind, default_bind in _LISTENER_KINDS:
        block = listeners.child(kind)
        if block is None:
            continue
        named = [key for key in block.keys() if isinstance(block.values[key], ConfigTree)]
        # NanoMQ's wss takes its certificate from listeners.ssl; ours may also name its own.
        inherited = next((listener.tls for listener in found if listener.name == "ssl"), None)
        if block.has("bind") or not named or block.has("certfile"):
            # As in NanoMQ, a listener block without bind keeps the default address.
            found += _listener(block, kind, default_bind=default_bind, inherited_tls=inherited)
        for name in named:
            section = block.child(name)
            found += _listener(section, f"{kind}.{name}", inherited_tls=inherited)
            section.finish()
        block.finish()
    listeners.not_implemented("quic")
    listeners.finish()
    _check_distinct(root, found)
    if not found:
        root.ctx.warn(root.at("listeners"), "no MQTT listener is enabled")
    return tuple(found)


def _listener(section: Section, name: str, default_bind: str | None = None,
              inherited_tls: TlsConfig | None = None) -> list[ListenerConfig]:
    kind = name.split(".", 1)[0]
    websocket = kind in ("ws", "wss")
    form = '"host:port/path"' if websocket else '"host:port"'
    bind = section.raw("bind")
    if not section.boolean("enable", True):
        return []
    if bind is MISSING:
        if default_bind is None:
            raise section.fail(None, f"a listener needs bind = {form}")
        bind = default_bind
    try:
        if not isinstance(bind, str):
            raise ValueError(f"expected {form}, got {describe(bind)}")
        host, port, path = parse_ws_bind(bind) if websocket else (*parse_bind(bind), None)
    except ValueError as exc:
        raise section.fail("bind", str(exc)) from None
    tls = None
    if kind == "ssl":
        tls = _tls(section)
    elif kind == "wss":
        tls = _tls(section, inherited_tls)
    ws = _websocket(section, path) if websocket else None
    return [ListenerConfig(name, host, port, tls, ws)]


def _websocket(section: Section, path: str) -> WebSocketConfig:
    """Our WebSocket keys (NanoMQ has none): max_message_size and allowed_origins."""
    origins = section.raw("allowed_origins")
    if origins is MISSING:
        origins = []
    if not isinstance(origins, list) or not all(
            isinstance(origin, str) and re.match(r"^https?://[^/\s]+/?$", origin) for origin in origins):
        raise section.fail("allowed_origins", 'expected a list of origins such as ["https://dashboard.example:8443"], '
                           f"got {describe(origins)}")
    return WebSocketConfig(
        path=path,
        max_message_size=section.size("max_message_size", None, low=2, high=MQTT_MAX_PACKET),
        allowed_origins=tuple(origins),
    )


def _tls(section: Section, inherited: TlsConfig | None = None) -> TlsConfig:
    """The TLS keys of an ssl or wss listener; the files must be readable now, not at the
    first client. A wss listener takes the keys it does not name from listeners.ssl, as
    NanoMQ's (which reads only bind from listeners.wss) takes them all."""
    files = {}
    for key in ("certfile", "keyfile", "cacertfile"):
        path = section.string(key, None)
        if path is not None:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise section.fail(key, f"cannot read {path!r}: {exc.strerror or exc}") from None
        files[key] = path if path is not None else getattr(inherited, key, None)
    kind = "a wss listener" if section.path[1] == "wss" else "an ssl listener"
    for key in ("certfile", "keyfile"):
        if files[key] is None:
            where = " (here or in listeners.ssl)" if kind == "a wss listener" else ""
            raise section.fail(key, f"{kind} needs {key} = \"/path/to/{key[:-4]}.pem\"{where}")
    verify_peer = section.boolean("verify_peer", inherited.verify_peer if inherited else False)
    if verify_peer and files["cacertfile"] is None:
        raise section.fail("verify_peer", "verify_peer = true needs cacertfile (the CA of client certificates)")
    as_username = section.raw("peer_cert_as_username")
    if as_username is not MISSING and as_username not in ("cn", "none", False):
        raise section.fail("peer_cert_as_username", f"expected cn or none, got {describe(as_username)}")
    if as_username is MISSING:
        cert_username = inherited.peer_cert_as_username if inherited else None
    else:
        cert_username = "cn" if as_username == "cn" else None
    return TlsConfig(
        certfile=files["certfile"],
        keyfile=files["keyfile"],
        cacertfile=files["cacertfile"],
        key_password=section.string("key_password", inherited.key_password if inherited else None),
        verify_peer=verify_peer,
        fail_if_no_peer_cert=section.boolean("fail_if_no_peer_cert",
                                             inherited.fail_if_no_peer_cert if inherited else False),
        peer_cert_as_username=cert_username,
    )


def read_limits(root: Section) -> LimitsConfig:
    """The `limits { ... }` block (ours); absent keys keep LimitsConfig's defaults."""
    defaults = LimitsConfig()
    limits = root.child("limits")
    if limits is None:
        return defaults
    config = LimitsConfig(
        max_connections=limits.integer("max_connections", defaults.max_connections, 1),
        max_connection_rate=limits.integer("max_connection_rate", defaults.max_connection_rate, 0),
        max_topic_length=limits.integer("max_topic_length", defaults.max_topic_length, 1, 65535),
        max_topic_levels=limits.integer("max_topic_levels", defaults.max_topic_levels, 1),
        max_subscriptions=limits.integer("max_subscriptions", defaults.max_subscriptions, 0),
        max_retained_messages=limits.integer("max_retained_messages", defaults.max_retained_messages, 0),
        max_retained_bytes=limits.size("max_retained_bytes", defaults.max_retained_bytes, 0),
    )
    limits.finish()
    return config


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
    defaults = MqttConfig()
    mqtt = root.child("mqtt")
    if mqtt is None:
        return defaults
    max_packet_size = mqtt.size("max_packet_size", defaults.max_packet_size, 1, NANOMQ_MAX_PACKET)
    config = MqttConfig(
        # Anything above MQTT's own ceiling means "no limit beyond the protocol's".
        max_packet_size=min(max_packet_size, MQTT_MAX_PACKET),
        max_mqueue_len=mqtt.integer("max_mqueue_len", defaults.max_mqueue_len, 1),
        retry_interval=mqtt.duration("retry_interval", defaults.retry_interval),
        keepalive_multiplier=mqtt.number("keepalive_multiplier", defaults.keepalive_multiplier, 0.5),
        max_inflight_window=mqtt.integer("max_inflight_window", defaults.max_inflight_window, 1, 65535),
        property_size=mqtt.integer("property_size", defaults.property_size, 1),
        max_topic_alias=mqtt.integer("max_topic_alias", defaults.max_topic_alias, 0, 65535),
        connect_timeout=mqtt.duration("connect_timeout", defaults.connect_timeout),
    )
    mqtt.not_implemented("max_awaiting_rel", "await_rel_timeout")
    mqtt.not_implemented(
        "session",
        note="it is NanoMQ's 0.14-0.18 form; 0.19+ keys go directly in mqtt { }, "
        "e.g. msq_len is max_mqueue_len and qos_duration is retry_interval",
    )
    mqtt.finish()
    return config


def read_log(root: Section) -> LogConfig:
    """The `log { ... }` block: targets, level, file and rotation."""
    defaults = LogConfig()
    log = root.child("log")
    if log is None:
        return defaults
    targets = _log_targets(log, defaults.to)
    rotation_defaults = LogRotation()
    rotation = log.child("rotation")
    if rotation is not None:
        rotation_config = LogRotation(
            size=rotation.size("size", rotation_defaults.size, 1),
            count=rotation.integer("count", rotation_defaults.count, 1),
        )
        rotation.finish()
    else:
        rotation_config = rotation_defaults
    config = LogConfig(
        to=targets,
        level=log.choice("level", defaults.level, LOG_LEVELS),
        dir=log.string("dir", defaults.dir),
        file=log.string("file", defaults.file),
        rotation=rotation_config,
    )
    log.not_implemented("uds_addr")
    log.finish()
    return config


def _log_targets(log: Section, default: tuple[str, ...]) -> tuple[str, ...]:
    value = log.raw("to")
    if value is MISSING:
        return default
    items = value if isinstance(value, list) else [value]
    targets: list[str] = []
    for index, item in enumerate(items):
        name = item.lower() if isinstance(item, str) else None
        if name in LOG_TARGETS:
            if name not in targets:
                targets.append(name)
        elif name in ("syslog", "uds"):
            path = log.at("to")
            log.ctx.warn(path, f"{format_path(path)}: {name} is not implemented (ignored)")
        else:
            where = index if isinstance(value, list) else None
            problem = f"expected console, file or a list of them, got {describe(item)}"
            raise log.ctx.error(log.at("to") + ((where,) if where is not None else ()), problem)
    return tuple(targets)


def read_http_server(root: Section) -> HttpServerConfig | None:
    """The `http_server { ... }` block; absent means on with defaults, `enable = false` means off."""
    defaults = HttpServerConfig()
    http = root.child("http_server")
    if http is None:
        return defaults
    # NanoMQ 0.14-0.18 had an enable key; 0.19+ enables the server by the block's presence.
    if not http.boolean("enable", True):
        http.seen.update(http.keys())  # a disabled block's keys are not worth warning about
        return None
    bind = http.get("bind", defaults.bind, _host_value)
    if http.raw("auth_type") is not MISSING and str(http.values["auth_type"]).lower() == "jwt":
        raise http.fail("auth_type", "jwt is not implemented; use basic or no_auth")
    config = HttpServerConfig(
        port=http.integer("port", defaults.port, 0, 65535),
        bind=bind,
        username=http.string("username", defaults.username),
        password=http.string("password", defaults.password),
        auth_type=http.choice("auth_type", defaults.auth_type, ("basic", "no_auth")),
    )
    http.not_implemented("limit_conn", "parallel", "jwt")
    http.finish()
    return config


def _host_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an IP address or host name, got {describe(value)}")
    return parse_host(value)


# Top-level blocks NanoMQ knows that this appliance does not implement.
UNIMPLEMENTED_BLOCKS = (
    "system", "authorization", "sqlite", "bridges", "bridge", "rules",
    "exchange_client", "parquet", "plugin", "preset", "vsomeip", "gateway",
)


def warn_unimplemented_blocks(root: Section) -> None:
    root.not_implemented(*UNIMPLEMENTED_BLOCKS)
