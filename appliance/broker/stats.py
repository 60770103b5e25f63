"""Broker counters as plain integers: the hot path bumps attributes, the metrics
collector reads them at scrape time (no locks, no label lookups per message)."""

from __future__ import annotations

from collections import Counter

# Reasons `messages_dropped` counts under; exported at 0 before the first drop so rate()
# and alerts work from the start.
DROP_REASONS = (
    "queue_full", "expired", "too_large", "no_subscribers", "slow_subscriber", "session_ended",
    "too_many_properties",
)


class BrokerStats:
    __slots__ = (
        "connections_accepted",
        "connections_refused",
        "messages_received",
        "messages_sent",
        "messages_dropped",
        "bytes_received",
        "bytes_sent",
        "packets_received",
        "packets_sent",
        "packets_dropped_closing",
        "acl_denied",
        "limits_hit",
        "tls_handshake_failures",
        "http_auth_errors",
    )

    def __init__(self) -> None:
        self.connections_accepted = 0  # CONNACK success sent
        self.connections_refused: Counter[str] = Counter()  # by reason: "bad_credentials", ...
        self.messages_received = [0, 0, 0]  # PUBLISH from clients, index = QoS
        self.messages_sent = [0, 0, 0]  # PUBLISH to clients, index = QoS
        self.messages_dropped: Counter[str] = Counter()  # by reason: queue_full, expired, ...
        self.bytes_received = 0
        self.bytes_sent = 0
        self.packets_received = 0
        self.packets_sent = 0
        # Packets a client sent after its connection started closing (DISCONNECT, protocol
        # error, takeover, shutdown): read, counted, never handled.
        self.packets_dropped_closing = 0
        self.acl_denied: Counter[str] = Counter()  # by what: "publish", "subscribe", "will", "receive"
        self.limits_hit: Counter[str] = Counter()  # by the `limits` key (or "connect_timeout") that refused
        self.tls_handshake_failures = 0
        self.http_auth_errors = 0  # auth server unreachable, slow or 5xx
