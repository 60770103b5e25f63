"""The supported keys of nanomq.conf, for the README's configuration reference.

`KEYS` is the table; `describe_keys()` renders it as Markdown. NanoMQ keys missing here
load with a "not implemented (ignored)" warning; keys NanoMQ does not have are marked (ours).
"""

from __future__ import annotations

from typing import NamedTuple


class KeyDoc(NamedTuple):
    key: str
    form: str
    default: str
    meaning: str


KEYS: tuple[KeyDoc, ...] = (
    KeyDoc("listeners.tcp.bind", '"host:port"', '"0.0.0.0:1883"', 'MQTT over TCP listener; "[::]:1883" for IPv6. No listeners block: this default.'),
    KeyDoc("listeners.tcp.<name>.bind", '"host:port"', "-", 'More listeners, named "tcp.<name>".'),
    KeyDoc("listeners.tcp[.<name>].enable", "bool", "true", "false skips that listener."),
    KeyDoc("listeners.ssl.bind", '"host:port"', '"0.0.0.0:8883"', 'MQTT over TLS 1.2+ listener; more as listeners.ssl.<name>. Needs certfile and keyfile.'),
    KeyDoc("listeners.ssl[.<name>].certfile", "path", "required", "Server certificate chain (PEM)."),
    KeyDoc("listeners.ssl[.<name>].keyfile", "path", "required", "Server private key (PEM)."),
    KeyDoc("listeners.ssl[.<name>].key_password", "string", "none", "Password of an encrypted keyfile (never logged)."),
    KeyDoc("listeners.ssl[.<name>].cacertfile", "path", "none", "CA(s) that sign client certificates."),
    KeyDoc("listeners.ssl[.<name>].verify_peer", "bool", "false", "Ask for a client certificate and verify it (needs cacertfile)."),
    KeyDoc("listeners.ssl[.<name>].fail_if_no_peer_cert", "bool", "false", "With verify_peer: refuse clients without a certificate (mutual TLS)."),
    KeyDoc("listeners.ssl[.<name>].peer_cert_as_username", "cn|none", "none", "The verified certificate's CN becomes the username and authenticates it (ours, EMQX's key)."),
    KeyDoc("listeners.ssl[.<name>].enable", "bool", "true", "false skips that listener."),
    KeyDoc("listeners.ws.bind", '"host:port/path"', '"0.0.0.0:8083/mqtt"', "MQTT over WebSocket listener; no path means /mqtt; more as listeners.ws.<name>."),
    KeyDoc("listeners.wss.bind", '"host:port/path"', '"0.0.0.0:8084/mqtt"', "MQTT over secure WebSocket; more as listeners.wss.<name>."),
    KeyDoc("listeners.wss[.<name>].certfile, keyfile, key_password, cacertfile, verify_peer, fail_if_no_peer_cert, peer_cert_as_username", "as listeners.ssl", "listeners.ssl's", "TLS of a wss listener; each key not given is taken from listeners.ssl, as NanoMQ takes them all."),
    KeyDoc("listeners.ws|wss[.<name>].enable", "bool", "true", "false skips that listener."),
    KeyDoc("listeners.ws|wss[.<name>].max_message_size", "size", "mqtt.max_packet_size + 64KB", "Largest WebSocket message (and frame), however fragmented; over it: Close 1009 (ours)."),
    KeyDoc("listeners.ws|wss[.<name>].allowed_origins", "[origin, ...]", "[] (any)", 'Browser pages allowed to connect, e.g. ["https://dash.example:8443"]; others get 403. Requests without Origin (non-browser clients) pass (ours).'),
    KeyDoc("mqtt.max_packet_size", "size", "1MB", "Largest packet accepted and sent, 1 byte..260MB (NanoMQ: 260MB default)."),
    KeyDoc("mqtt.max_mqueue_len", "int >= 1", "2048", "Messages queued per offline or slow session; oldest dropped."),
    KeyDoc("mqtt.retry_interval", "duration", "10s", "Resend interval for unacknowledged QoS 1/2 messages."),
    KeyDoc("mqtt.keepalive_multiplier", "number > 0.5", "1.25", "Close a client silent for keepalive x this."),
    KeyDoc("mqtt.max_inflight_window", "int 1..65535", "2048", "Unacknowledged QoS 1/2 messages per session."),
    KeyDoc("mqtt.property_size", "int >= 1", "32", "Most user properties per packet."),
    KeyDoc("mqtt.max_topic_alias", "int 0..65535", "65535", "Topic Alias Maximum announced and accepted (ours)."),
    KeyDoc("mqtt.connect_timeout", "duration", "10s", "Time a socket may stay open without CONNECT (ours)."),
    KeyDoc("auth.allow_anonymous", "bool", "true", "Clients authenticated by nothing (no username, or one no source knows) may connect; else CONNACK 0x87 / v3 5."),
    KeyDoc("auth.no_match", "allow|deny", "allow", "ACL verdict when no rule (and no acl_req) decides."),
    KeyDoc("auth.deny_action", "ignore|disconnect", "ignore", "On an ACL denial: refuse that PUBLISH (v5 PUBACK/PUBREC 0x87, QoS 0 dropped) or SUBSCRIBE (SUBACK 0x87 / v3 0x80), or disconnect (v5 DISCONNECT 0x87)."),
    KeyDoc("auth.password", '{include "file"}', "none", 'Password file: "user": "password" or "user": "pbkdf2-sha256$..." lines; wrong password: CONNACK 0x86 / v3 4.'),
    KeyDoc("auth.acl", '{include "file"}', "none", "ACL file: rules = [{permit, username|clientid|ipaddr|and|or, action, topics}], first match wins."),
    KeyDoc("auth.cache.max_size", "int >= 1", "32", "ACL decisions remembered per client."),
    KeyDoc("auth.cache.ttl", "duration", "1m", "How long an ACL decision is remembered."),
    KeyDoc("auth.http_auth.auth_req", "{url, method, headers, params}", "none", "Ask an HTTP service at CONNECT: 2xx allows, 4xx refuses (0x86); params use %u %c %a %P %p %C %d %r."),
    KeyDoc("auth.http_auth.super_req", "{url, method, headers, params}", "none", "2xx: the client is a superuser and skips ACL checks."),
    KeyDoc("auth.http_auth.acl_req", "{url, method, headers, params}", "none", "Asked when no ACL rule matched: 2xx allows, 4xx denies; %A is 1 (subscribe) or 2 (publish), %t the topic, %m empty."),
    KeyDoc("auth.http_auth.timeout", "duration", "5s", "Whole-request timeout."),
    KeyDoc("auth.http_auth.connect_timeout", "duration", "5s", "Connect timeout."),
    KeyDoc("auth.http_auth.pool_size", "int >= 1", "32", "Concurrent requests and pooled connections."),
    KeyDoc("auth.http_auth.on_error", "deny|allow", "deny", "When the service is down, slow or answers 5xx: refuse (CONNACK 0x88 / v3 3) or allow (ours)."),
    KeyDoc("auth.http_auth.cache_ttl", "duration", "1m", "Answers reused this long; 0 never (ours)."),
    KeyDoc("limits.max_connections", "int >= 1", "10000", "Open sockets over all listeners; more are closed at accept (ours)."),
    KeyDoc("limits.max_connection_rate", "int >= 0", "500", "New connections per source IP per second, as large a burst; 0 no limit (ours)."),
    KeyDoc("limits.max_topic_length", "int 1..65535", "4096", "Longest topic name or filter; a PUBLISH over it is a protocol error 0x90, a SUBSCRIBE gets 0x8F (ours)."),
    KeyDoc("limits.max_topic_levels", "int >= 1", "64", "Most levels in a topic name or filter, same answers (ours)."),
    KeyDoc("limits.max_subscriptions", "int >= 0", "1000", "Subscriptions per client; more get SUBACK 0x97 / v3 0x80; 0 no limit (ours)."),
    KeyDoc("limits.max_retained_messages", "int >= 0", "100000", "Retained topics kept; new ones beyond are routed, not kept; 0 no limit (ours)."),
    KeyDoc("limits.max_retained_bytes", "size", "64MB", "Retained payload bytes kept, same rule; 0 no limit (ours)."),
    KeyDoc("log.to", "[console, file] or one", "[console]", "Log targets; syslog is not implemented."),
    KeyDoc("log.level", "trace|debug|info|warn|error|fatal", "warn", "Least severe level logged."),
    KeyDoc("log.dir", "string", '"/tmp"', "Directory of the log file."),
    KeyDoc("log.file", "string", '"nanomq.log"', "Log file name."),
    KeyDoc("log.rotation.size", "size", "10MB", "Rotate the log file at this size."),
    KeyDoc("log.rotation.count", "int >= 1", "5", "Rotated files kept."),
    KeyDoc("http_server.port", "int 0..65535", "8081", "/metrics, /healthz, /readyz, /api/v4. No block: on with defaults."),
    KeyDoc("http_server.bind", "IP or host", '"0.0.0.0"', "Address to listen on (ours; NanoMQ binds all)."),
    KeyDoc("http_server.username", "string", '"admin"', "Basic auth user for /api/v4."),
    KeyDoc("http_server.password", "string", '"public"', "Basic auth password (never logged)."),
    KeyDoc("http_server.auth_type", "basic|no_auth", "basic", "jwt is refused (not implemented)."),
    KeyDoc("http_server.enable", "bool", "true", "false turns the HTTP server off (NanoMQ 0.14-0.18 key)."),
    KeyDoc("webhook.url", "http(s) URL", "required", "Where events are POSTed."),
    KeyDoc("webhook.headers.<name>", "string", "-", "Extra request headers; Content-Type defaults to application/json."),
    KeyDoc("webhook.body.encoding", "plain|base64|base62", "plain", "Payload encoding; other values are an error."),
    KeyDoc("webhook.pool_size", "int >= 1", "32", "Concurrent requests and pooled connections."),
    KeyDoc("webhook.cancel_timeout", "ms number or duration", "5000", "Connect and request timeout."),
    KeyDoc("webhook.enable", "bool", "true", "false: no webhook (block not validated)."),
    KeyDoc("webhook.ssl (alias tls)", "object", "-", "keyfile, certfile, cacertfile, key_password, verify_peer (default true); https only."),
    KeyDoc("webhook.events", "[{event, topic}]", "[]", "Rules, first match wins; events on_client_connack, on_client_disconnected, on_message_publish."),
    KeyDoc("webhook.retry.max_attempts", "int >= 1", "8", "Tries per event, the first included (ours)."),
    KeyDoc("webhook.retry.backoff_min", "duration", "0.1s", "First retry delay (ours)."),
    KeyDoc("webhook.retry.backoff_max", "duration", "30s", "Largest retry delay (ours)."),
    KeyDoc("webhook.queue.max_len", "int >= 1", "100000", "Events held in memory (ours)."),
    KeyDoc("webhook.queue.spool_dir", "path", "none", "Spill to disk when full or endpoint down (ours)."),
    KeyDoc("webhook.drain_timeout", "duration", "5s", "Time to deliver the queue at SIGTERM (ours)."),
)

# NanoMQ environment variables applied after the file.
ENV_VARS: tuple[tuple[str, str], ...] = (
    ("NANOMQ_BROKER_URL", 'listeners.tcp.bind, as "nmq-tcp://host:port"'),
    ("NANOMQ_TCP_ENABLE", "listeners.tcp.enable"),
    ("NANOMQ_TLS_ENABLE", "listeners.ssl on/off"),
    ("NANOMQ_TLS_URL", 'listeners.ssl.bind, as "tls+nmq-tcp://host:port"'),
    ("NANOMQ_TLS_CERT_PATH", "listeners.ssl.certfile"),
    ("NANOMQ_TLS_KEY_PATH", "listeners.ssl.keyfile"),
    ("NANOMQ_TLS_KEY_PASSWORD", "listeners.ssl.key_password"),
    ("NANOMQ_TLS_CA_CERT_PATH", "listeners.ssl.cacertfile"),
    ("NANOMQ_TLS_VERIFY_PEER", "listeners.ssl.verify_peer"),
    ("NANOMQ_TLS_FAIL_IF_NO_PEER_CERT", "listeners.ssl.fail_if_no_peer_cert"),
    ("NANOMQ_WEBSOCKET_ENABLE", "listeners.ws on/off (on: at 0.0.0.0:8083/mqtt unless configured)"),
    ("NANOMQ_WEBSOCKET_URL", 'listeners.ws.bind, as "nmq-ws://host:port/path"; turns it on'),
    ("NANOMQ_WEBSOCKET_TLS_ENABLE", "listeners.wss on/off (the certificate from listeners.ssl)"),
    ("NANOMQ_WEBSOCKET_TLS_URL", 'listeners.wss.bind, as "nmq-wss://host:port/path"; turns it on'),
    ("NANOMQ_ALLOW_ANONYMOUS", "auth.allow_anonymous"),
    ("NANOMQ_MAX_PACKET_SIZE", "mqtt.max_packet_size (bytes or size)"),
    ("NANOMQ_MSQ_LEN", "mqtt.max_mqueue_len"),
    ("NANOMQ_QOS_DURATION", "mqtt.retry_interval (seconds or duration)"),
    ("NANOMQ_PROPERTY_SIZE", "mqtt.property_size"),
    ("NANOMQ_LOG_TO", 'log.to, e.g. "file|console"'),
    ("NANOMQ_LOG_LEVEL", "log.level"),
    ("NANOMQ_LOG_DIR", "log.dir"),
    ("NANOMQ_LOG_FILE", "log.file"),
    ("NANOMQ_LOG_ROTATION_SIZE", "log.rotation.size"),
    ("NANOMQ_LOG_ROTATION_COUNT", "log.rotation.count"),
    ("NANOMQ_HTTP_SERVER_ENABLE", "http_server on/off"),
    ("NANOMQ_HTTP_SERVER_URL", "http_server.bind"),
    ("NANOMQ_HTTP_SERVER_PORT", "http_server.port"),
    ("NANOMQ_HTTP_SERVER_USERNAME", "http_server.username"),
    ("NANOMQ_HTTP_SERVER_PASSWORD", "http_server.password"),
    ("NANOMQ_HTTP_SERVER_AUTH_TYPE", "http_server.auth_type"),
    ("NANOMQ_CONF_PATH", "the config file (read by the CLI)"),
)


def describe_keys() -> str:
    """The key table, then the environment variables, as Markdown."""
    lines = ["| key | form | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k.key}` | {_cell(k.form)} | {_cell(k.default)} | {_cell(k.meaning)} |" for k in KEYS]
    lines += ["", "| variable | sets |", "|---|---|"]
    lines += [f"| `{name}` | {target} |" for name, target in ENV_VARS]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    # Forms such as "allow|deny" must not split the Markdown row.
    return text.replace("|", "\\|")
