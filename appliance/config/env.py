"""NanoMQ's environment variables, applied over the file for the keys this appliance supports.

Names and meanings follow NanoMQ's env.c. A bad value is a ConfigError naming the
variable; a NanoMQ variable for a feature we lack is a warning (unless it only turns
that feature off). NANOMQ_CONF_PATH is the CLI's business (see default_config_path).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable, Mapping

from . import units
from .blocks import LOG_LEVELS, MQTT_MAX_PACKET, parse_bind, parse_host, parse_ws_bind
from .errors import ConfigError
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


def _error(name: str, key: str, problem: str) -> ConfigError:
    return ConfigError(SOURCE, None, f"{name} ({key})", problem)


def _convert(env: Mapping[str, str], name: str, key: str, convert: Callable[[str], object]):
    try:
        return convert(env[name])
    except ValueError as exc:
        raise _error(name, key, str(exc)) from None


def _positive_int(text: str) -> int:
    value = units.to_int(text)
    if value < 1:
        raise ValueError(f"must be 1 or more, got {value}")
    return value


def _port(text: str) -> int:
    value = units.to_int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"must be between 0 and 65535, got {value}")
    return value


def _broker_url(text: str) -> tuple[str, int]:
    scheme, sep, rest = text.strip().partition("://")
    if not sep or scheme.lower() not in ("nmq-tcp", "tcp", "mqtt-tcp"):
        raise ValueError(f'expected "nmq-tcp://host:port" (plain TCP is what this appliance serves), got {text!r}')
    return parse_bind(rest)


def _tls_url(text: str) -> tuple[str, int]:
    scheme, sep, rest = text.strip().partition("://")
    if not sep or scheme.lower() not in ("tls+nmq-tcp", "tls", "ssl", "mqtts"):
        raise ValueError(f'expected "tls+nmq-tcp://host:port", got {text!r}')
    return parse_bind(rest)


def _apply_tls(listeners: list[ListenerConfig], get, env: Mapping[str, str], warnings: list[str]) -> None:
    """NANOMQ_TLS_*: turn the unnamed ssl listener on or off, or change its keys."""
    names = [listener.name for listener in listeners]
    current = listeners[names.index("ssl")] if "ssl" in names else None
    enable = get("NANOMQ_TLS_ENABLE", "listeners.ssl.enable", units.to_bool)
    if enable is False:
        if current is not None:
            listeners.remove(current)
        return
    changes = {
        "certfile": get("NANOMQ_TLS_CERT_PATH", "listeners.ssl.certfile", str),
        "keyfile": get("NANOMQ_TLS_KEY_PATH", "listeners.ssl.keyfile", str),
        "cacertfile": get("NANOMQ_TLS_CA_CERT_PATH", "listeners.ssl.cacertfile", str),
        "key_password": get("NANOMQ_TLS_KEY_PASSWORD", "listeners.ssl.key_password", str),
        "verify_peer": get("NANOMQ_TLS_VERIFY_PEER", "listeners.ssl.verify_peer", units.to_bool),
        "fail_if_no_peer_cert": get("NANOMQ_TLS_FAIL_IF_NO_PEER_CERT", "listeners.ssl.fail_if_no_peer_cert",
                                    units.to_bool),
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    url = get("NANOMQ_TLS_URL", "listeners.ssl.bind", _tls_url)
    if current is None and not enable:
        for name in sorted(_TLS & env.keys() - {"NANOMQ_TLS_ENABLE"}):
            warnings.append(f"{SOURCE}: {name} is ignored: no listeners.ssl and NANOMQ_TLS_ENABLE is not true")
        return
    if not changes and url is None and current is not None:
        return
    tls = current.tls if current is not None else TlsConfig("", "")
    tls = replace(tls, **changes)
    if not tls.certfile or not tls.keyfile:
        raise _error("NANOMQ_TLS_ENABLE", "listeners.ssl", "TLS needs NANOMQ_TLS_CERT_PATH and NANOMQ_TLS_KEY_PATH")
    if tls.verify_peer and not tls.cacertfile:
        raise _error("NANOMQ_TLS_VERIFY_PEER", "listeners.ssl.verify_peer", "needs NANOMQ_TLS_CA_CERT_PATH")
    host, port = url if url is not None else (
        (current.host, current.port) if current is not None else ("0.0.0.0", 8883))
    replaced = ListenerConfig("ssl", host, port, tls)
    if current is not None:
        listeners[listeners.index(current)] = replaced
    else:
        listeners.append(replaced)


def _ws_url(scheme_wanted: str):
    def parse(text: str) -> tuple[str, int, str]:
        scheme, sep, rest = text.strip().partition("://")
        if not sep or scheme.lower() not in (f"nmq-{scheme_wanted}", scheme_wanted):
            raise ValueError(f'expected "nmq-{scheme_wanted}://host:port/path", got {text!r}')
        return parse_ws_bind(rest)
    return parse


def _apply_websocket(listeners: list[ListenerConfig], get) -> None:
    """NANOMQ_WEBSOCKET_*: the unnamed ws and wss listeners on, off, or at another URL.
    As in NanoMQ, a URL alone turns its listener on; wss uses the ssl listener's TLS
    unless listeners.wss names its own."""
    for kind, enable_name, url_name, default in (
            ("ws", "NANOMQ_WEBSOCKET_ENABLE", "NANOMQ_WEBSOCKET_URL", ("0.0.0.0", 8083, "/mqtt")),
            ("wss", "NANOMQ_WEBSOCKET_TLS_ENABLE", "NANOMQ_WEBSOCKET_TLS_URL", ("0.0.0.0", 8084, "/mqtt"))):
        names = [listener.name for listener in listeners]
        current = listeners[names.index(kind)] if kind in names else None
        enable = get(enable_name, f"listeners.{kind}.enable", units.to_bool)
        url = get(url_name, f"listeners.{kind}.bind", _ws_url(kind))
        if enable is False:
            if current is not None:
                listeners.remove(current)
            continue
        if url is None and (current is not None or not enable):
            continue
        host, port, path = url if url is not None else (
            (current.host, current.port, current.websocket.path) if current is not None else default)
        websocket = current.websocket if current is not None else WebSocketConfig()
        tls = None
        if kind == "wss":
            tls = current.tls if current is not None else next(
                (listener.tls for listener in listeners if listener.name == "ssl"), None)
            if tls is None:
                raise _error(url_name if url is not None else enable_name, "listeners.wss",
                             "wss needs a certificate: listeners.ssl or NANOMQ_TLS_CERT_PATH and NANOMQ_TLS_KEY_PATH")
        replaced = ListenerConfig(kind, host, port, tls, replace(websocket, path=path))
        if current is not None:
            listeners[listeners.index(current)] = replaced
        else:
            listeners.append(replaced)


def _http_bind(text: str) -> str:
    # NanoMQ's http_server ip_addr; accept a bare host, "host:port" or a URL's host part.
    rest = text.strip().partition("://")[2] or text.strip()
    rest = rest.split("/", 1)[0]
    if rest.startswith("[") or rest.count(":") == 1:
        try:
            return parse_bind(rest)[0]
        except ValueError:
            pass
    return parse_host(rest)


def _log_targets(text: str) -> tuple[str, ...]:
    # NanoMQ looks for the words anywhere ("file|console", "file,console").
    words = [w for w in re.split(r"[\s|,]+", text.lower()) if w]
    unknown = [w for w in words if w not in ("file", "console", "syslog", "uds")]
    if unknown or not words:
        raise ValueError(f"expected console, file or both separated by |, got {text!r}")
    return tuple(w for w in ("file", "console") if w in words)


def _log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return level


def _positive_size(text: str) -> int:
    value = units.to_size(text)
    if value < 1:
        raise ValueError(f"must be 1 or more, got {value}")
    return value


def _positive_duration(text: str) -> float:
    value = units.to_duration(text)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def apply_env(config: Config, env: Mapping[str, str], warnings: list[str]) -> Config:
    """`config` with NanoMQ's environment overrides applied; warnings appended in place."""

    def get(name: str, key: str, convert: Callable[[str], object]):
        return _convert(env, name, key, convert) if name in env else None

    listeners = list(config.listeners)
    url = get("NANOMQ_BROKER_URL", "listeners.tcp.bind", _broker_url)
    if url is not None:
        replaced = ListenerConfig("tcp", *url)
        names = [listener.name for listener in listeners]
        if "tcp" in names:
            listeners[names.index("tcp")] = replaced
        else:
            listeners.insert(0, replaced)
    if get("NANOMQ_TCP_ENABLE", "listeners.tcp.enable", units.to_bool) is False:
        listeners = [listener for listener in listeners if listener.name != "tcp"]
    _apply_tls(listeners, get, env, warnings)
    _apply_websocket(listeners, get)

    auth = config.auth
    allow_anonymous = get("NANOMQ_ALLOW_ANONYMOUS", "auth.allow_anonymous", units.to_bool)
    if allow_anonymous is not None:
        auth = replace(auth or AuthConfig(), allow_anonymous=allow_anonymous)

    mqtt = config.mqtt
    mqtt_changes = {
        "max_packet_size": get("NANOMQ_MAX_PACKET_SIZE", "mqtt.max_packet_size", _positive_size),
        "max_mqueue_len": get("NANOMQ_MSQ_LEN", "mqtt.max_mqueue_len", _positive_int),
        "retry_interval": get("NANOMQ_QOS_DURATION", "mqtt.retry_interval", _positive_duration),
        "property_size": get("NANOMQ_PROPERTY_SIZE", "mqtt.property_size", _positive_int),
    }
    if mqtt_changes["max_packet_size"] is not None:
        mqtt_changes["max_packet_size"] = min(mqtt_changes["max_packet_size"], MQTT_MAX_PACKET)
    mqtt = replace(mqtt, **{k: v for k, v in mqtt_changes.items() if v is not None})

    log = config.log
    rotation_changes = {
        "size": get("NANOMQ_LOG_ROTATION_SIZE", "log.rotation.size", _positive_size),
        "count": get("NANOMQ_LOG_ROTATION_COUNT", "log.rotation.count", _positive_int),
    }
    log_changes = {
        "to": get("NANOMQ_LOG_TO", "log.to", _log_targets),
        "level": get("NANOMQ_LOG_LEVEL", "log.level", _log_level),
        "dir": get("NANOMQ_LOG_DIR", "log.dir", str),
        "file": get("NANOMQ_LOG_FILE", "log.file", str),
        "rotation": replace(log.rotation, **{k: v for k, v in rotation_changes.items() if v is not None}),
    }
    log = replace(log, **{k: v for k, v in log_changes.items() if v is not None})
    for target in ("syslog", "uds"):
        if target in env.get("NANOMQ_LOG_TO", "").lower():
            warnings.append(f"{SOURCE}: NANOMQ_LOG_TO: {target} is not implemented (ignored)")

    http = config.http_server
    enable = get("NANOMQ_HTTP_SERVER_ENABLE", "http_server.enable", units.to_bool)
    if enable is True and http is None:
        http = HttpServerConfig()
    elif enable is False:
        http = None
    if http is None:
        for name in sorted(_HTTP_SERVER & env.keys()):
            warnings.append(f"{SOURCE}: {name} is ignored: the HTTP server is off")
    else:
        auth_type = get("NANOMQ_HTTP_SERVER_AUTH_TYPE", "http_server.auth_type", str)
        if auth_type is not None and auth_type.strip().lower() not in ("basic", "no_auth"):
            raise _error("NANOMQ_HTTP_SERVER_AUTH_TYPE", "http_server.auth_type",
                         f"expected basic or no_auth, got {auth_type!r}")
        http_changes = {
            "port": get("NANOMQ_HTTP_SERVER_PORT", "http_server.port", _port),
            "bind": get("NANOMQ_HTTP_SERVER_URL", "http_server.bind", _http_bind),
            "username": get("NANOMQ_HTTP_SERVER_USERNAME", "http_server.username", str),
            "password": get("NANOMQ_HTTP_SERVER_PASSWORD", "http_server.password", str),
            "auth_type": auth_type.strip().lower() if auth_type else None,
        }
        http = replace(http, **{k: v for k, v in http_changes.items() if v is not None})

    for name in sorted(env):
        if not name.startswith("NANOMQ_") or name in HANDLED_ELSEWHERE or name in _APPLIED:
            continue
        if name in UNIMPLEMENTED:
            turned_off = name.endswith("_ENABLE") and env[name].strip().lower() in ("false", "no", "0", "")
            if not turned_off:
                warnings.append(f"{SOURCE}: {name} is not implemented (ignored)")
        else:
            warnings.append(f"{SOURCE}: unknown NanoMQ variable {name} (ignored)")

    return replace(config, listeners=tuple(listeners), mqtt=mqtt, log=log, http_server=http, auth=auth)


_HTTP_SERVER = frozenset({
    "NANOMQ_HTTP_SERVER_AUTH_TYPE", "NANOMQ_HTTP_SERVER_PORT", "NANOMQ_HTTP_SERVER_URL",
    "NANOMQ_HTTP_SERVER_USERNAME", "NANOMQ_HTTP_SERVER_PASSWORD",
})
_TLS = frozenset({
    "NANOMQ_TLS_ENABLE", "NANOMQ_TLS_URL", "NANOMQ_TLS_CA_CERT_PATH", "NANOMQ_TLS_CERT_PATH",
    "NANOMQ_TLS_KEY_PATH", "NANOMQ_TLS_KEY_PASSWORD", "NANOMQ_TLS_VERIFY_PEER",
    "NANOMQ_TLS_FAIL_IF_NO_PEER_CERT",
})
_APPLIED = _HTTP_SERVER | _TLS | frozenset({
    "NANOMQ_WEBSOCKET_ENABLE", "NANOMQ_WEBSOCKET_URL", "NANOMQ_WEBSOCKET_TLS_ENABLE", "NANOMQ_WEBSOCKET_TLS_URL",
    "NANOMQ_ALLOW_ANONYMOUS",
    "NANOMQ_BROKER_URL", "NANOMQ_TCP_ENABLE", "NANOMQ_MAX_PACKET_SIZE", "NANOMQ_MSQ_LEN",
    "NANOMQ_QOS_DURATION", "NANOMQ_PROPERTY_SIZE", "NANOMQ_LOG_ROTATION_SIZE",
    "NANOMQ_LOG_ROTATION_COUNT", "NANOMQ_LOG_TO", "NANOMQ_LOG_LEVEL", "NANOMQ_LOG_DIR",
    "NANOMQ_LOG_FILE", "NANOMQ_HTTP_SERVER_ENABLE",
})
