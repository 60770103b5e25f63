"""The validated configuration: frozen dataclasses built once at start from nanomq.conf.

Nothing outside `appliance.config` reads HOCON; every module receives its own part of
`Config`. Durations are float seconds, sizes are int bytes, whatever the file wrote.

Each field that is a config key is declared with `key(...)` (see keys.py): its path, kind
(type, unit, bounds), default, NanoMQ environment variable, NanoMQ's or ours, and doc.
Building a block checks every such field and the block's invariants, so a block built in
code obeys the same rules as one read from a file, and no user of it re-checks.

Defaults follow NanoMQ's where they are safe for an edge box; where NanoMQ's are not
(e.g. its 260MB packet limit), the safer value is ours and the README says so.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import units
from .keys import (
    MB, OURS, Block, Bool, Choice, Duration, Host, Int, Invalid, ItemError, Kind, Number, Size, Structure, Text, key,
)

REQUIRED = dataclasses.MISSING  # a key with no default: the block needs it

# NanoMQ's ceiling for max_packet_size (its docs: "1 Byte to 260 MB"; its shipped conf: 260MB).
NANOMQ_MAX_PACKET = 260 * MB
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
ENCODINGS = ("plain", "base64", "base62")
ORDER_SCOPES = ("client", "topic", "none")  # webhook.order
SYNC_MODES = ("fsync", "os")  # how hard a store's commit is
PLACEHOLDERS = "ucaPpCdtmrA"  # NanoMQ's %-placeholders in http_auth params
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class LogTargets(Kind):
    """`to = [console, file]`, `to = file` or NanoMQ's env form "file|console", "file,console"."""

    form = "[console, file] or one"
    TARGETS = ("console", "file")
    UNIMPLEMENTED = ("syslog", "uds")

    def _words(self, value) -> list[str]:
        listed = isinstance(value, list)
        items = value if listed else re.split(r"[\s|,]+", value) if isinstance(value, str) else [value]
        words = []
        for index, item in enumerate(items):
            word = item.strip().lower() if isinstance(item, str) else None
            if word == "":
                continue
            if word not in self.TARGETS + self.UNIMPLEMENTED:
                problem = f"expected console, file or a list of them, got {units.describe(item)}"
                raise ItemError(index, problem) if listed else ValueError(problem)
            if word not in words:
                words.append(word)
        return words

    def convert(self, value):
        return tuple(word for word in self._words(value) if word in self.TARGETS)

    def check(self, value):
        if not isinstance(value, tuple) or not all(isinstance(w, str) for w in value):
            raise ValueError(f"expected a tuple of targets, got {units.describe(value)}")

    def notes(self, written):
        return [f"{word} is not implemented (ignored)" for word in self._words(written) if word in self.UNIMPLEMENTED]

    def show(self, value):
        return "[" + ", ".join(value) + "]"


class HttpUrl(Kind):
    """An http:// or https:// URL with a host (and a valid port)."""

    form = "http(s) URL"

    def convert(self, value):
        if not isinstance(value, str):
            raise ValueError(f"expected an http:// or https:// URL, got {units.describe(value)}")
        return value

    def check(self, value):
        if not isinstance(value, str):
            raise ValueError(f"expected an http:// or https:// URL, got {units.describe(value)}")
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
        if any(c in value for c in "\r\n\0 "):
            raise ValueError(f"a URL cannot contain spaces or control characters, got {value!r}")


class Origins(Kind):
    """Browser origins, `["https://dash.example:8443", ...]`: scheme and host, no path."""

    form = "[origin, ...]"
    _ORIGIN = re.compile(r"^https?://[^/\s]+/?$")

    def convert(self, value):
        if not isinstance(value, list):
            raise ValueError(f'expected a list of origins such as ["https://dash.example:8443"], '
                             f"got {units.describe(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not self._ORIGIN.match(item):
                raise ItemError(index, f'expected an origin such as "https://dash.example:8443", '
                                f"got {units.describe(item)}")
        return tuple(value)

    def check(self, value):
        if not isinstance(value, tuple) or not all(isinstance(o, str) and self._ORIGIN.match(o) for o in value):
            raise ValueError(f'expected origins such as ("https://dash.example:8443",), got {units.describe(value)}')

    def show(self, value):
        return "[" + ", ".join(f'"{origin}"' for origin in value) + "]"


PATH = Text(form="path", optional=True, empty=False)

if TYPE_CHECKING:
    from .bridges import BridgeConfig
    from .sqlite import SqliteConfig


@dataclass(frozen=True)
class TlsConfig(Block):
    """The TLS part of `listeners.ssl[.<name>] { ... }`, NanoMQ's keys."""

    __section__ = "listeners.ssl[.<name>]"
    certfile: str = key("listeners.ssl[.<name>].certfile", Text(form="path", empty=False), REQUIRED,
                        "Server certificate chain (PEM).", env="NANOMQ_TLS_CERT_PATH", shown_default="required")
    keyfile: str = key("listeners.ssl[.<name>].keyfile", Text(form="path", empty=False), REQUIRED,
                       "Server private key (PEM).", env="NANOMQ_TLS_KEY_PATH", shown_default="required")
    cacertfile: str | None = key("listeners.ssl[.<name>].cacertfile", PATH, None,
                                 "CA(s) that sign client certificates (mutual TLS).", env="NANOMQ_TLS_CA_CERT_PATH")
    key_password: str | None = key("listeners.ssl[.<name>].key_password", Text(optional=True), None,
                                   "Password of an encrypted keyfile (never logged).",
                                   env="NANOMQ_TLS_KEY_PASSWORD", repr=False)
    verify_peer: bool = key("listeners.ssl[.<name>].verify_peer", Bool(), False,
                            "Ask for a client certificate and verify it (needs cacertfile).",
                            env="NANOMQ_TLS_VERIFY_PEER")
    fail_if_no_peer_cert: bool = key("listeners.ssl[.<name>].fail_if_no_peer_cert", Bool(), False,
                                     "With verify_peer: refuse clients without a certificate.",
                                     env="NANOMQ_TLS_FAIL_IF_NO_PEER_CERT")
    peer_cert_as_username: str | None = key("listeners.ssl[.<name>].peer_cert_as_username",
                                            Choice(("cn", "none"), none_word="none"), None,
                                            "cn: the verified certificate's CN is the username and "
                                            "authenticates it (EMQX's key).", origin=OURS)

    def invariants(self) -> None:
        if self.verify_peer and self.cacertfile is None:
            raise Invalid("verify_peer", "verify_peer = true needs cacertfile (the CA of client certificates)")


@dataclass(frozen=True)
class WebSocketConfig(Block):
    """The WebSocket part of `listeners.ws[.<name>]` / `listeners.wss[.<name>]` (our keys;
    NanoMQ's ws listener has only bind)."""

    __section__ = "listeners.ws[s][.<name>]"
    path: str = "/mqtt"  # the path of bind = "host:port/path", NanoMQ's default
    max_message_size: int | None = key("listeners.ws[s][.<name>].max_message_size",
                                       Size(2, NANOMQ_MAX_PACKET, optional=True), None,
                                       "Largest WebSocket message (and frame), however fragmented; over it: "
                                       "Close 1009.", origin=OURS, shown_default="mqtt.max_packet_size + 64KB")
    allowed_origins: tuple[str, ...] = key("listeners.ws[s][.<name>].allowed_origins", Origins(), (),
                                           "Browser pages allowed to connect; others get 403. Requests without "
                                           "Origin (not browsers) pass.", origin=OURS, shown_default="[] (any)")


@dataclass(frozen=True)
class ListenerConfig:
    """One MQTT listener: `listeners.tcp|ssl|ws|wss[.<name>] { bind ... }`
    (keys: blocks.LISTENER_KEYS, TlsConfig and WebSocketConfig)."""

    name: str  # "tcp" / "ssl" / "ws" / "wss" for the unnamed ones, else "<kind>.<name>"
    host: str
    port: int  # 0 asks the OS for a free port (tests)
    tls: TlsConfig | None = None  # set for ssl and wss listeners
    websocket: WebSocketConfig | None = None  # set for ws and wss listeners


@dataclass(frozen=True)
class MqttConfig(Block):
    """The `mqtt { ... }` block, NanoMQ's meanings."""

    __section__ = "mqtt"
    __not_implemented__ = ("max_awaiting_rel", "await_rel_timeout", "batch_resend")
    max_packet_size: int = key("mqtt.max_packet_size", Size(1, NANOMQ_MAX_PACKET), 1 * MB,
                               "Largest packet accepted and sent, both directions (NanoMQ's default: 260MB).",
                               env="NANOMQ_MAX_PACKET_SIZE")
    max_mqueue_len: int = key("mqtt.max_mqueue_len", Int(1), 2048,
                              "Messages queued per offline or slow session; the oldest is dropped beyond it.",
                              env="NANOMQ_MSQ_LEN")
    retry_interval: float = key("mqtt.retry_interval", Duration(), 10.0,
                                "Resend interval for unacknowledged QoS 1/2 messages.", env="NANOMQ_QOS_DURATION")
    keepalive_multiplier: float = key("mqtt.keepalive_multiplier", Number(0.5), 1.25,
                                      "Close a client silent for keepalive x this.")
    max_inflight_window: int = key("mqtt.max_inflight_window", Int(1, 65535), 2048,
                                   "Unacknowledged QoS 1/2 messages per session.")
    property_size: int = key("mqtt.property_size", Int(1), 32, "Most user properties per packet.",
                             env="NANOMQ_PROPERTY_SIZE")
    max_topic_alias: int = key("mqtt.max_topic_alias", Int(0, 65535), 65535,
                               "Topic Alias Maximum announced and accepted.", origin=OURS)
    connect_timeout: float = key("mqtt.connect_timeout", Duration(), 10.0,
                                 "Time a socket may stay open without CONNECT.", origin=OURS)
    max_keepalive: int = key("mqtt.max_keepalive", Int(0, 65535), 0,
                             "Longest keepalive (seconds) a client may use; v5 clients asking for more or 0 are "
                             "told Server Keep Alive = this in CONNACK, v3 ones are refused (CONNACK 2), as "
                             "mosquitto's max_keepalive; 0: off.", origin=OURS)
    session_expiry_interval: float = key("mqtt.session_expiry_interval", Duration(positive=False), 7200.0,
                                         "How long a v3 persistent session (Clean Session 0) is kept after its "
                                         "client goes (EMQX's key); v5 clients say their own; 0: for ever.",
                                         origin=OURS)


@dataclass(frozen=True)
class LimitsConfig(Block):
    """The `limits { ... }` block (ours): what one client or source may cost the broker."""

    __section__ = "limits"
    max_connections: int = key("limits.max_connections", Int(1), 10_000,
                               "Open sockets over all listeners; more are closed at accept.", origin=OURS)
    max_connection_rate: int = key("limits.max_connection_rate", Int(0), 500,
                                   "New connections per source IP per second, as large a burst; 0: no limit.",
                                   origin=OURS)
    max_topic_length: int = key("limits.max_topic_length", Int(1, 65535), 4096,
                                "Longest topic name or filter; a PUBLISH over it is a protocol error 0x90, "
                                "a SUBSCRIBE gets 0x8F.", origin=OURS)
    max_topic_levels: int = key("limits.max_topic_levels", Int(1), 64,
                                "Most levels in a topic name or filter, same answers.", origin=OURS)
    max_subscriptions: int = key("limits.max_subscriptions", Int(0), 1000,
                                 "Subscriptions per client; more get SUBACK 0x97 / v3 0x80; 0: no limit.",
                                 origin=OURS)
    max_retained_messages: int = key("limits.max_retained_messages", Int(0), 100_000,
                                     "Retained topics kept; new ones beyond are routed, not kept; 0: no limit.",
                                     origin=OURS)
    max_retained_bytes: int = key("limits.max_retained_bytes", Size(0), 64 * MB,
                                  "Retained payload bytes kept, same rule; 0: no limit.", origin=OURS)
    max_outbox_bytes: int = key("limits.max_outbox_bytes", Size(1), 4 * MB,
                                "Encoded bytes queued for one connection; beyond it QoS 0 messages are dropped "
                                "(counted slow_subscriber) and QoS 1/2 wait in the session (max_mqueue_len); a "
                                "message larger than it still goes, alone.", origin=OURS)
    max_queued_bytes: int = key("limits.max_queued_bytes", Size(0), 64 * MB,
                                "Payload bytes queued for one session (offline, or behind its outbox and in-flight "
                                "window); beyond it the oldest are dropped (queue_full), as max_mqueue_len does by "
                                "count; 0: no limit.", origin=OURS)
    max_sessions: int = key("limits.max_sessions", Int(0), 20_000,
                            "Sessions kept, connected or not; a CONNECT that needs a new one beyond it is refused "
                            "(CONNACK 0x97 / v3 3), counted in appliance_sessions_refused_total; 0: no limit.",
                            origin=OURS)
    max_handshakes: int = key("limits.max_handshakes", Int(0), 0,
                              "TLS handshakes in progress at once over all ssl listeners; more sockets are "
                              "closed at accept, so slow handshakes cannot take every place; 0: half of "
                              "max_connections.", origin=OURS, shown_default="0 (half of max_connections)")


@dataclass(frozen=True)
class AclRule:
    """One entry of NanoMQ's ACL `rules = [...]`."""

    permit: bool  # allow
    action: str = "pubsub"  # "publish", "subscribe", "pubsub"
    topics: tuple[str, ...] = ()  # filters, may hold ${username} / ${clientid}; empty: every topic
    conditions: tuple[tuple[str, str | None], ...] = ()  # (username|clientid|ipaddr, value; None = "#")
    combine: str = "and"  # "and" / "or" over conditions
    index: int = 0  # position in the file, for messages


@dataclass(frozen=True)
class HttpAuthRequest(Block):
    """One of `auth.http_auth.{auth_req, super_req, acl_req}`."""

    __section__ = "auth.http_auth.<req>"
    url: str = key("auth.http_auth.<req>.url", HttpUrl(), REQUIRED, "Where the request goes.",
                   shown_default="required")
    method: str = key("auth.http_auth.<req>.method", Choice(("post", "get", "put")), "post", "HTTP method.")
    headers: tuple[tuple[str, str], ...] = key("auth.http_auth.<req>.headers.<name>", Structure("string"), (),
                                               "Request headers.", shown_default="-")
    # name -> template with %u %c %a %P %p %C %d %t %m %r %A
    params: tuple[tuple[str, str], ...] = key("auth.http_auth.<req>.params", Structure("{name = template}"), (),
                                              "Form or query parameters; %u username, %c client id, %a address, "
                                              "%P password, %p port, %C/%d certificate CN/subject, %r protocol, "
                                              "%t topic, %A access (1 subscribe, 2 publish), %m empty.",
                                              shown_default="{}")

    def invariants(self) -> None:
        for name, template in self.params:
            for i, char in enumerate(template):
                if char == "%" and (i + 1 >= len(template) or template[i + 1] not in PLACEHOLDERS + "%"):
                    raise Invalid("params", f"{name}: unknown placeholder in {template!r}; "
                                  f"known: {', '.join('%' + p for p in PLACEHOLDERS)}")


@dataclass(frozen=True)
class HttpAuthConfig(Block):
    """`auth.http_auth { ... }`: ask an HTTP service who may connect, publish and subscribe."""

    __section__ = "auth.http_auth"
    __not_implemented__ = ("ssl", "tls")
    auth_req: HttpAuthRequest | None = key("auth.http_auth.auth_req", Structure("{url, method, headers, params}"),
                                           None, "Asked at CONNECT: 2xx allows, 4xx refuses (0x86).")
    super_req: HttpAuthRequest | None = key("auth.http_auth.super_req", Structure("{url, method, headers, params}"),
                                            None, "2xx: the client is a superuser and skips ACL checks.")
    acl_req: HttpAuthRequest | None = key("auth.http_auth.acl_req", Structure("{url, method, headers, params}"),
                                          None, "Asked when no ACL rule matched: 2xx allows, 4xx denies.")
    timeout: float = key("auth.http_auth.timeout", Duration(), 5.0, "Whole-request timeout.")
    connect_timeout: float = key("auth.http_auth.connect_timeout", Duration(), 5.0, "Connect timeout.")
    pool_size: int = key("auth.http_auth.pool_size", Int(1), 32, "Concurrent requests and pooled connections.")
    on_error: str = key("auth.http_auth.on_error", Choice(("deny", "allow")), "deny",
                        "When the service is down, slow or answers 5xx: refuse (CONNACK 0x88 / v3 3) or allow.",
                        origin=OURS)
    cache_ttl: float = key("auth.http_auth.cache_ttl", Duration(positive=False), 60.0,
                           "Answers reused this long; 0: never.", origin=OURS)


@dataclass(frozen=True)
class AuthConfig(Block):
    """The `auth { ... }` block, NanoMQ's meanings."""

    __section__ = "auth"
    allow_anonymous: bool = key("auth.allow_anonymous", Bool(), True,
                                "Clients authenticated by nothing may connect; else CONNACK 0x87 / v3 5.",
                                env="NANOMQ_ALLOW_ANONYMOUS")
    no_match: str = key("auth.no_match", Choice(("allow", "deny")), "allow",
                        "ACL verdict when no rule (and no acl_req) decides.")
    deny_action: str = key("auth.deny_action", Choice(("ignore", "disconnect")), "ignore",
                           "On an ACL denial: refuse that one PUBLISH/SUBSCRIBE, or disconnect (v5 0x87).")
    passwords: tuple[tuple[str, str], ...] | None = key(
        "auth.password", Structure('{include "file"}'), None,
        'Password file: "user": "password" or "user": "pbkdf2-sha256$..." lines; wrong password: CONNACK 0x86 / v3 4.',
        repr=False)
    acl: tuple[AclRule, ...] = key("auth.acl", Structure('{include "file"}'), (),
                                   "ACL file: rules = [{permit, username|clientid|ipaddr|and|or, action, topics}], "
                                   "first match wins.", shown_default="none")
    cache_max_size: int = key("auth.cache.max_size", Int(1), 32, "ACL decisions remembered per client.")
    cache_ttl: float = key("auth.cache.ttl", Duration(), 60.0, "How long an ACL decision is remembered.")
    http: HttpAuthConfig | None = key("auth.http_auth", Structure("object"), None,
                                      "Ask an HTTP service (keys below); enable = false turns it off.")


@dataclass(frozen=True)
class LogRotation(Block):
    __section__ = "log.rotation"
    size: int = key("log.rotation.size", Size(1), 10 * MB, "Rotate the log file at this size.",
                    env="NANOMQ_LOG_ROTATION_SIZE")
    count: int = key("log.rotation.count", Int(1), 5, "Rotated files kept.", env="NANOMQ_LOG_ROTATION_COUNT")


@dataclass(frozen=True)
class LogConfig(Block):
    """The `log { ... }` block."""

    __section__ = "log"
    __not_implemented__ = ("uds_addr",)
    to: tuple[str, ...] = key("log.to", LogTargets(), ("console",),
                              "Log targets; syslog and uds are not implemented (a warning).", env="NANOMQ_LOG_TO")
    level: str = key("log.level", Choice(LOG_LEVELS), "warn", "Least severe level logged.", env="NANOMQ_LOG_LEVEL")
    dir: str = key("log.dir", Text(form="path", empty=False), "/tmp",
                   "Directory of the log file, when file is a target: it must exist, or end with / to be created (as NanoMQ).", env="NANOMQ_LOG_DIR")
    file: str = key("log.file", Text(empty=False), "nanomq.log", "Log file name.", env="NANOMQ_LOG_FILE")
    rotation: LogRotation = field(default_factory=LogRotation)


@dataclass(frozen=True)
class HttpServerConfig(Block):
    """The `http_server { ... }` block: metrics, health and NanoMQ's /api/v4 endpoints."""

    __section__ = "http_server"
    __not_implemented__ = ("limit_conn", "parallel", "jwt", "max_body")
    port: int = key("http_server.port", Int(0, 65535), 8081,
                    "/metrics, /healthz, /readyz and /api/v4 (no http_server block: no HTTP server, as NanoMQ).",
                    env="NANOMQ_HTTP_SERVER_PORT")
    bind: str = key("http_server.ip_addr", Host(), "0.0.0.0", "Address to listen on (bind is our older name for it).",
                    env="NANOMQ_HTTP_SERVER_URL", aliases=("bind",))
    username: str = key("http_server.username", Text(), "admin", "Basic auth user for /api/v4.",
                        env="NANOMQ_HTTP_SERVER_USERNAME")
    password: str = key("http_server.password", Text(), "public", "Basic auth password (never logged).",
                        env="NANOMQ_HTTP_SERVER_PASSWORD", repr=False)
    auth_type: str = key("http_server.auth_type", Choice(("basic", "no_auth"), unimplemented=("jwt",)), "basic",
                         "Authentication of /api/v4; jwt is refused (not implemented).",
                         env="NANOMQ_HTTP_SERVER_AUTH_TYPE")


@dataclass(frozen=True)
class WebhookRule:
    """One entry of `webhook.events`: the event (lower-cased) and an optional topic filter."""

    event: str  # "on_client_connack", "on_client_disconnected", "on_message_publish", ...
    topic: str | None = None  # only meaningful for on_message_publish; None matches every topic
    index: int = 0  # position in the file, for messages ("webhook.events[2]")


@dataclass(frozen=True)
class WebhookTls(Block):
    """`webhook.ssl { ... }` (alias `webhook.tls`), used for https URLs."""

    __section__ = "webhook.ssl"
    cacertfile: str | None = key("webhook.ssl.cacertfile", PATH, None,
                                 "For https URLs (webhook.tls is an alias of webhook.ssl): CAs of the endpoint; "
                                 "none: the system's.")
    certfile: str | None = key("webhook.ssl.certfile", PATH, None, "Client certificate.")
    keyfile: str | None = key("webhook.ssl.keyfile", PATH, None, "Client key (needs certfile).")
    key_password: str | None = key("webhook.ssl.key_password", Text(optional=True), None,
                                   "Password of an encrypted keyfile (never logged).", repr=False)
    verify_peer: bool = key("webhook.ssl.verify_peer", Bool(), True, "Verify the endpoint's certificate.")

    def invariants(self) -> None:
        if self.keyfile and not self.certfile:
            raise Invalid("keyfile", "a client key needs certfile too")


@dataclass(frozen=True)
class WebhookRetry(Block):
    """`webhook.retry { ... }` (ours): capped exponential backoff with jitter."""

    __section__ = "webhook.retry"
    max_attempts: int = key("webhook.retry.max_attempts", Int(1), 8,
                            "Tries per event, the first included; then it is failed and counted.", origin=OURS)
    backoff_min: float = key("webhook.retry.backoff_min", Duration(), 0.1, "First retry delay.", origin=OURS)
    backoff_max: float = key("webhook.retry.backoff_max", Duration(), 30.0,
                             "Largest retry delay, at least backoff_min.", origin=OURS)

    def invariants(self) -> None:
        if self.backoff_max < self.backoff_min:
            raise Invalid("backoff_max", f"must be at least backoff_min ({self.backoff_min:g}s)")


@dataclass(frozen=True)
class WebhookQueue(Block):
    """`webhook.queue { ... }` (ours): the bounded queue and the optional disk spool."""

    __section__ = "webhook.queue"
    max_len: int = key("webhook.queue.max_len", Int(1), 100_000, "Events held in memory across all partitions.",
                       origin=OURS)
    spool_dir: str | None = key("webhook.queue.spool_dir", PATH, None,
                                "Directory of the disk spool (the image: /var/lib/nanomq/spool): every event is "
                                "on disk before what caused it is acknowledged, and overflow waits there; none: "
                                "in memory only, overflow dropped oldest-first and counted.", origin=OURS)
    sync: str = key("webhook.queue.sync", Choice(SYNC_MODES), "fsync",
                    "With a spool: fsync survives power loss, os a process crash only.", origin=OURS)


def header_problem(name: str, value: str) -> str | None:
    """Why (name, value) cannot be sent as an HTTP header, or None."""
    if not _HEADER_NAME.match(name):
        return f"{name!r} is not a valid HTTP header name"
    if any(c in value for c in "\r\n\0"):
        return f"{name}: a header value cannot contain a line break or NUL"
    return None


@dataclass(frozen=True)
class WebhookConfig(Block):
    """The `webhook { ... }` block (see docs/webhook.md)."""

    __section__ = "webhook"
    url: str = key("webhook.url", HttpUrl(), REQUIRED, "Where events are POSTed.", shown_default="required")
    rules: tuple[WebhookRule, ...] = key("webhook.events", Structure("[{event, topic}]"), (),
                                         "Rules, first match wins; NanoMQ's events on_client_connack, "
                                         "on_client_disconnected, on_message_publish, and EMQX's (see WebHook).")
    headers: tuple[tuple[str, str], ...] = key("webhook.headers.<name>", Structure("string"), (),
                                               "Extra request headers, as written; Content-Type defaults to "
                                               "application/json.", shown_default="-")
    encoding: str = key("webhook.body.encoding", Choice(ENCODINGS), "plain", "How message payloads are written.")
    pool_size: int = key("webhook.pool_size", Int(1), 32, "Concurrent requests and pooled connections.")
    cancel_timeout: float = key("webhook.cancel_timeout", Duration(0.001, "milliseconds"), 5.0,
                                "Deadline of one whole request: connect, send, answer (a bare number is "
                                "milliseconds, as NanoMQ).")
    enable: bool = key("webhook.enable", Bool(), True, "false: no webhook (the block is not validated).")
    tls: WebhookTls = field(default_factory=WebhookTls)
    retry: WebhookRetry = field(default_factory=WebhookRetry)
    queue: WebhookQueue = field(default_factory=WebhookQueue)
    drain_timeout: float = key("webhook.drain_timeout", Duration(positive=False, high=3600.0), 5.0,
                               "At SIGTERM, time to deliver what is queued before spooling or counting it.",
                               origin=OURS)
    order: str = key("webhook.order", Choice(ORDER_SCOPES), "client",
                     "Ordering scope: events of one client / one topic POSTed in order, or none (every "
                     "worker for every event).", origin=OURS)

    def invariants(self) -> None:
        for name, value in self.headers:
            problem = header_problem(name, value)
            if problem:
                raise Invalid("headers", problem)


@dataclass(frozen=True)
class PersistenceConfig(Block):
    """`persistence { ... }` (ours): retained messages, persistent sessions, their queued and
    in-flight QoS 1/2 messages and delayed wills survive a restart and a crash (see the
    README's Persistence section). No block: everything is in memory, as NanoMQ without one."""

    __section__ = "persistence"
    dir: str = key("persistence.dir", Text(form="path", empty=False), REQUIRED,
                   "Directory of the store (persistence.db); the image and chart mount a volume at "
                   "/var/lib/nanomq. NanoMQ's sqlite.mounted_file_path sets it when there is no block.",
                   origin=OURS, shown_default="required")
    sync: str = key("persistence.sync", Choice(SYNC_MODES), "fsync",
                    "fsync: what was acknowledged survives power loss; os: a crash of the process only "
                    "(cheaper on slow flash).", origin=OURS)
    enable: bool = key("persistence.enable", Bool(), True, "false: in memory only (the block is not validated).",
                       origin=OURS)
    # Where `dir` came from, for errors found at start-up: NanoMQ's sqlite block sets it too.
    dir_key: str = field(default="persistence.dir", compare=False)


@dataclass(frozen=True)
class Config:
    """Everything the appliance runs with."""

    listeners: tuple[ListenerConfig, ...] = (ListenerConfig("tcp", "0.0.0.0", 1883),)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    log: LogConfig = field(default_factory=LogConfig)
    http_server: HttpServerConfig | None = None  # None: no http_server block, as NanoMQ
    webhook: WebhookConfig | None = None  # None: no webhook block, or enable = false
    auth: AuthConfig | None = None  # None: no auth block (everyone may connect and do anything)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    bridges: tuple[BridgeConfig, ...] = ()  # bridges.mqtt.<name>, see config/bridges.py
    sqlite: SqliteConfig | None = None  # NanoMQ's sqlite block: the bridges' disk queue (config/sqlite.py)
    persistence: PersistenceConfig | None = None  # None: no persistence block (in memory only)
    source: str | None = None  # the file it was read from
