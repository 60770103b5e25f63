"""The validated configuration: frozen dataclasses built once at start from nanomq.conf.

Nothing outside `appliance.config` reads HOCON; every module receives its own part of
`Config`. Durations are float seconds, sizes are int bytes, whatever the file wrote.
Defaults follow NanoMQ's where they are safe for an edge box; where NanoMQ's are not
(e.g. its 260 MB packet limit), the safer value is ours and the README says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TlsConfig:
    """The TLS part of `listeners.ssl[.<name>] { ... }`, NanoMQ's keys."""

    certfile: str
    keyfile: str
    cacertfile: str | None = None  # CAs that sign client certificates (mutual TLS)
    key_password: str | None = field(default=None, repr=False)  # never printed
    verify_peer: bool = False  # ask for a client certificate and verify it
    fail_if_no_peer_cert: bool = False  # with verify_peer: refuse clients without one
    peer_cert_as_username: str | None = None  # "cn": the certificate's CN is the username (ours)


@dataclass(frozen=True)
class WebSocketConfig:
    """The WebSocket part of `listeners.ws[.<name>]` / `listeners.wss[.<name>]`."""

    path: str = "/mqtt"  # the path of bind = "host:port/path", NanoMQ's default
    max_message_size: int | None = None  # bytes per WebSocket message (ours); None: max_packet_size + 64 KB
    allowed_origins: tuple[str, ...] = ()  # browser Origins allowed to connect (ours); empty: any


@dataclass(frozen=True)
class ListenerConfig:
    """One MQTT listener: `listeners.tcp|ssl|ws|wss[.<name>] { bind ... }`."""

    name: str  # "tcp" / "ssl" / "ws" / "wss" for the unnamed ones, else "<kind>.<name>"
    host: str
    port: int  # 0 asks the OS for a free port (tests)
    tls: TlsConfig | None = None  # set for ssl and wss listeners
    websocket: WebSocketConfig | None = None  # set for ws and wss listeners


@dataclass(frozen=True)
class MqttConfig:
    """The `mqtt { ... }` block, NanoMQ's meanings."""

    max_packet_size: int = 1024 * 1024  # bytes, both directions; NanoMQ default is 260 MB
    max_mqueue_len: int = 2048  # messages queued per offline/slow session, oldest dropped
    retry_interval: float = 10.0  # seconds before an unacknowledged QoS 1/2 message is resent
    keepalive_multiplier: float = 1.25  # close after keepalive * this without a packet
    max_inflight_window: int = 2048  # unacknowledged QoS 1/2 messages per session
    property_size: int = 32  # max number of user properties per packet
    max_topic_alias: int = 65535  # Topic Alias Maximum we announce and accept
    connect_timeout: float = 10.0  # seconds a socket may stay open without CONNECT (ours)


@dataclass(frozen=True)
class LimitsConfig:
    """The `limits { ... }` block (ours): what one client or source may cost the broker."""

    max_connections: int = 10_000  # open sockets over all listeners; more are closed at accept
    max_connection_rate: int = 500  # new connections per source IP per second (burst as large); 0 = no limit
    max_topic_length: int = 4096  # characters of a topic name or filter
    max_topic_levels: int = 64  # levels of a topic name or filter
    max_subscriptions: int = 1000  # per client; 0 = no limit
    max_retained_messages: int = 100_000  # 0 = no limit
    max_retained_bytes: int = 64 * 1024 * 1024  # payload bytes of retained messages; 0 = no limit


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
class HttpAuthRequest:
    """One of `auth.http_auth.{auth_req, super_req, acl_req}`."""

    url: str
    method: str = "post"  # "post", "get", "put"
    headers: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()  # name -> template with %u %c %a %P %p %C %d %t %m %r %A


@dataclass(frozen=True)
class HttpAuthConfig:
    """`auth.http_auth { ... }`: ask an HTTP service who may connect, publish and subscribe."""

    auth_req: HttpAuthRequest | None = None
    super_req: HttpAuthRequest | None = None
    acl_req: HttpAuthRequest | None = None
    timeout: float = 5.0  # seconds for a whole request
    connect_timeout: float = 5.0
    pool_size: int = 32  # concurrent requests and pooled connections
    on_error: str = "deny"  # "deny" or "allow" when the service is down, slow or answers 5xx (ours)
    cache_ttl: float = 60.0  # seconds an answer is reused (ours); 0 = never


@dataclass(frozen=True)
class AuthConfig:
    """The `auth { ... }` block, NanoMQ's meanings."""

    allow_anonymous: bool = True  # clients authenticated by nothing may connect
    no_match: str = "allow"  # ACL verdict when no rule matches: "allow" or "deny"
    deny_action: str = "ignore"  # on an ACL denial: "ignore" (refuse the one operation) or "disconnect"
    passwords: tuple[tuple[str, str], ...] | None = field(default=None, repr=False)  # None: no file
    acl: tuple[AclRule, ...] = ()
    cache_max_size: int = 32  # ACL decisions remembered per client
    cache_ttl: float = 60.0  # seconds
    http: HttpAuthConfig | None = None


@dataclass(frozen=True)
class LogRotation:
    size: int = 10 * 1024 * 1024
    count: int = 5


@dataclass(frozen=True)
class LogConfig:
    """The `log { ... }` block."""

    to: tuple[str, ...] = ("console",)  # "console", "file"
    level: str = "warn"  # NanoMQ names: trace, debug, info, warn, error, fatal
    dir: str = "/tmp"
    file: str = "nanomq.log"
    rotation: LogRotation = field(default_factory=LogRotation)


@dataclass(frozen=True)
class HttpServerConfig:
    """The `http_server { ... }` block: metrics, health and NanoMQ's /api/v4 endpoints."""

    port: int = 8081
    bind: str = "0.0.0.0"  # ours; NanoMQ always binds every interface
    username: str = "admin"
    password: str = field(default="public", repr=False)  # never printed
    auth_type: str = "basic"  # "basic" or "no_auth"


@dataclass(frozen=True)
class WebhookRule:
    """One entry of `webhook.events`: the event (lower-cased) and an optional topic filter."""

    event: str  # "on_client_connack", "on_client_disconnected", "on_message_publish", ...
    topic: str | None = None  # only meaningful for on_message_publish; None matches every topic
    index: int = 0  # position in the file, for messages ("webhook.events[2]")


@dataclass(frozen=True)
class WebhookTls:
    """`webhook.ssl { ... }` (alias `webhook.tls`), used for https URLs."""

    cacertfile: str | None = None  # None: the system trust store
    certfile: str | None = None  # client certificate
    keyfile: str | None = None
    key_password: str | None = field(default=None, repr=False)
    verify_peer: bool = True


@dataclass(frozen=True)
class WebhookRetry:
    """`webhook.retry { ... }` (ours): capped exponential backoff with jitter."""

    max_attempts: int = 8  # including the first try; then the event is failed and counted
    backoff_min: float = 0.1  # seconds
    backoff_max: float = 30.0  # seconds


@dataclass(frozen=True)
class WebhookQueue:
    """`webhook.queue { ... }` (ours): the bounded queue and the optional disk spool."""

    max_len: int = 100_000  # events held in memory across all partitions
    spool_dir: str | None = None  # None: overflow is dropped oldest-first and counted


@dataclass(frozen=True)
class WebhookConfig:
    """The `webhook { ... }` block (see shared/spec/webhook.md)."""

    url: str
    rules: tuple[WebhookRule, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # as written; Content-Type added if absent
    encoding: str = "plain"  # "plain", "base64", "base62"
    pool_size: int = 32
    cancel_timeout: float = 5.0  # seconds (the file says ms, as NanoMQ does)
    enable: bool = True
    tls: WebhookTls = field(default_factory=WebhookTls)
    retry: WebhookRetry = field(default_factory=WebhookRetry)
    queue: WebhookQueue = field(default_factory=WebhookQueue)
    drain_timeout: float = 5.0  # seconds to deliver what is queued at SIGTERM


@dataclass(frozen=True)
class Config:
    """Everything the appliance runs with."""

    listeners: tuple[ListenerConfig, ...] = (ListenerConfig("tcp", "0.0.0.0", 1883),)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    log: LogConfig = field(default_factory=LogConfig)
    http_server: HttpServerConfig | None = field(default_factory=HttpServerConfig)
    webhook: WebhookConfig | None = None  # None: no webhook block, or enable = false
    auth: AuthConfig | None = None  # None: no auth block (everyone may connect and do anything)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    source: str | None = None  # the file it was read from
