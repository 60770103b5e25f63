"""A client's session: its subscriptions and the QoS 1/2 state that outlives a connection.

Outgoing QoS 1/2 messages are either in flight (sent, packet id assigned, awaiting the
acknowledgement) or pending (waiting for the in-flight window, or for the client to come
back). The pending queue is bounded: when it is full the oldest message is dropped and
counted, so a slow or absent subscriber never holds the broker's memory hostage.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from .message import Message
from .stats import BrokerStats

NEVER_EXPIRES = 0xFFFFFFFF


@dataclass(slots=True)
class SubscriptionOptions:
    qos: int
    no_local: bool = False
    retain_as_published: bool = False
    identifier: int | None = None  # v5 Subscription Identifier


@dataclass(slots=True)
class Delivery:
    """One QoS 1/2 message on its way to one session: pending, then in flight."""

    message: Message
    qos: int
    retain: bool
    subscription_ids: tuple = ()
    sent_at: float = 0.0  # time.monotonic() of the last send, while in flight
    released: bool = False  # QoS 2: PUBREC received, PUBREL sent, awaiting PUBCOMP


@dataclass(eq=False)
class Session:
    client_id: str
    stats: BrokerStats
    max_queue_len: int
    client: object | None = None  # the connected `Client`, if any
    expiry_interval: int = 0  # seconds after disconnect; NEVER_EXPIRES for ever
    subscriptions: dict[str, SubscriptionOptions] = field(default_factory=dict)
    inflight: dict[int, Delivery] = field(default_factory=dict)
    pending: deque | None = None  # made on first use: most sessions never queue
    awaiting_release: set[int] = field(default_factory=set)  # incoming QoS 2 ids before PUBREL
    expiry_timer: object | None = None  # gevent greenlet ending the session, while offline
    will_timer: object | None = None  # gevent greenlet publishing a delayed will
    _last_packet_id: int = 0

    def deliver(self, message: Message, qos: int, retain: bool, subscription_ids: tuple = ()) -> None:
        """Send now if the window allows, else queue (QoS 0 is never queued offline)."""
        client = self.client
        if client is not None and client.acl is not None and not client.acl.may_receive(message.topic):
            self.stats.acl_denied["receive"] += 1  # a wildcard subscription meets a denied topic
            return
        if qos == 0:
            if client is not None:
                client.send_publish(message, 0, retain, subscription_ids, None, False)
            return
        delivery = Delivery(message, qos, retain, subscription_ids)
        if client is not None and not self.pending and len(self.inflight) < client.send_window:
            self._send_new(delivery)
            return
        pending = self.pending
        if pending is None:
            pending = self.pending = deque()
        elif len(pending) >= self.max_queue_len:
            pending.popleft()
            self.stats.messages_dropped["queue_full"] += 1
        pending.append(delivery)

    def _send_new(self, delivery: Delivery) -> None:
        packet_id = self._next_packet_id()
        delivery.sent_at = time.monotonic()
        self.inflight[packet_id] = delivery
        self.client.send_publish(
            delivery.message, delivery.qos, delivery.retain, delivery.subscription_ids, packet_id, False
        )

    def _next_packet_id(self) -> int:
        packet_id = self._last_packet_id % 0xFFFF + 1
        inflight = self.inflight
        while packet_id in inflight:
            packet_id = packet_id % 0xFFFF + 1
        self._last_packet_id = packet_id
        return packet_id

    def pump(self) -> None:
        """Move pending messages into flight while the client's window has room."""
        client = self.client
        if client is None:
            return
        now = time.monotonic()
        while self.pending and len(self.inflight) < client.send_window:
            delivery = self.pending.popleft()
            expires_at = delivery.message.expires_at
            if expires_at is not None and expires_at <= now:
                self.stats.messages_dropped["expired"] += 1
                continue
            if client.acl is not None and not client.acl.may_receive(delivery.message.topic):
                self.stats.acl_denied["receive"] += 1  # queued while offline, denied now
                continue
            self._send_new(delivery)

    def acknowledge(self, packet_id: int) -> bool:
        """PUBACK (QoS 1) or PUBCOMP (QoS 2) arrived: the message is done."""
        if self.inflight.pop(packet_id, None) is None:
            return False
        self.pump()
        return True

    def release(self, packet_id: int) -> bool:
        """PUBREC arrived for a QoS 2 message: it now awaits PUBCOMP."""
        entry = self.inflight.get(packet_id)
        if entry is None or entry.qos != 2:
            return False
        entry.released = True
        entry.sent_at = time.monotonic()
        return True

    def resend(self, older_than: float | None = None) -> None:
        """Send again what is in flight (on reconnect, or after the retry interval)."""
        client = self.client
        now = time.monotonic()
        for packet_id, entry in list(self.inflight.items()):
            if older_than is not None and now - entry.sent_at < older_than:
                continue
            entry.sent_at = now
            if entry.released:
                client.send_pubrel(packet_id)
            else:
                client.send_publish(entry.message, entry.qos, entry.retain, entry.subscription_ids, packet_id, True)
