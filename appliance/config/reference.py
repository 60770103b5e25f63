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
    KeyDoc("mqtt.max_packet_size", "size", "1MB", "Largest packet accepted and sent, 1 byte..260MB (NanoMQ: 260MB default)."),
    KeyDoc("mqtt.max_mqueue_len", "int >= 1", "2048", "Messages queued per offline or slow session; oldest dropped."),
    KeyDoc("mqtt.retry_interval", "duration", "10s", "Resend interval for unacknowledged QoS 1/2 messages."),
    KeyDoc("mqtt.keepalive_multiplier", "number > 0.5", "1.25", "Close a client silent for keepalive x this."),
    KeyDoc("mqtt.max_inflight_window", "int 1..65535", "2048", "Unacknowledged QoS 1/2 messages per session."),
    KeyDoc("mqtt.property_size", "int >= 1", "32", "Most user properties per packet."),
    KeyDoc("mqtt.max_topic_alias", "int 0..65535", "65535", "Topic Alias Maximum announced and accepted (ours)."),
    KeyDoc("mqtt.connect_timeout", "duration", "10s", "Time a socket may stay open without CONNECT (ours)."),
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
    lines += [f"| `{k.key}` | {k.form} | {k.default} | {k.meaning} |" for k in KEYS]
    lines += ["", "| variable | sets |", "|---|---|"]
    lines += [f"| `{name}` | {target} |" for name, target in ENV_VARS]
    return "\n".join(lines) + "\n"
