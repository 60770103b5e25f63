"""Broker counters as plain integers: the hot path bumps attributes, the metrics
collector reads them at scrape time (no locks, no label lookups per message)."""

from __future__ import annotations

from collections import Counter


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
