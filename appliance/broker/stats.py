"""Broker counters as plain integers: the hot path bumps attributes, the metrics
collector reads them at scrape time (no locks, no label lookups per message)."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields

from ..config.model import LimitsConfig

# Reasons `messages_dropped` counts under; exported at 0 before the first drop so rate()
# and alerts work from the start.
DROP_REASONS = (
    "queue_full", "expired", "too_large", "no_subscribers", "slow_subscriber", "session_ended",
    "too_many_properties",
)
# The other labelled counters' known values, exported at 0 from the start for the same reason
# (an alert on increase() misses the first burst of a series that does not exist yet).
REFUSAL_REASONS = (  # connections_refused: client.rc_name() of every refusal the broker sends
    "bad_credentials", "client_id_invalid", "not_authorized", "server_busy", "server_unavailable",
    "unsupported_protocol_version", "will_topic_invalid", "bad_authentication_method", "max_sessions",
    "keepalive_too_long",
)
# Why a CONNECT got no session (sessions_refused): the session of its client id belongs to
# another user (an auth block vouches for usernames), or limits.max_sessions is reached.
SESSION_REFUSALS = ("other_owner", "max_sessions")
ACL_ACTIONS = ("publish", "subscribe", "will", "receive")  # receive: a delivery held back
LIMITS = tuple(f.name for f in fields(LimitsConfig)) + ("connect_timeout",)


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
        "sessions_refused",
        "sessions_expired",
        "packets_dropped_too_large",
    )

    def __init__(self) -> None:
        self.connections_accepted = 0  # CONNACK success sent
        self.connections_refused: Counter[str] = Counter(dict.fromkeys(REFUSAL_REASONS, 0))
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
        self.acl_denied: Counter[str] = Counter(dict.fromkeys(ACL_ACTIONS, 0))
        self.limits_hit: Counter[str] = Counter(dict.fromkeys(LIMITS, 0))  # by the `limits` key that refused
        self.tls_handshake_failures = 0
        self.http_auth_errors = 0  # auth server unreachable, slow or 5xx
        self.sessions_refused: Counter[str] = Counter(dict.fromkeys(SESSION_REFUSALS, 0))
        self.sessions_expired = 0  # offline sessions ended by their expiry interval
        # Packets of ours (acks, CONNACK, SUBACK, ...) over the client's Maximum Packet Size
        # even without optional properties: not sent (PUBLISHes count as dropped too_large).
        self.packets_dropped_too_large = 0
