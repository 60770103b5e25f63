"""A client's session: its subscriptions, its will and the QoS state that outlives a connection.

The session owns all of a client's QoS state: the packet ids it hands out, the messages
in flight (sent, awaiting the acknowledgement), the pending queue (waiting for the
in-flight window, for room in the connection's outbox, or for the client to come back)
and the ids of incoming QoS 2 messages awaiting PUBREL. It decides what to send and
hands it to its `Link` (the connection it is attached to), which only encodes and writes.

Pending messages are references to the routed `Message`, never encoded copies; they
are encoded when the link has room. The queue is bounded by `max_queue_len` messages and
`max_queue_bytes` payload bytes: when full, the oldest message is dropped and counted, so
a slow or absent subscriber costs at most its outbox budget plus this queue.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from ..mqtt.packets import Will
from .hooks import ClientInfo
from .journal import Journal
from .message import Message
from .stats import BrokerStats

NEVER_EXPIRES = 0xFFFFFFFF
# What an acknowledgement of ours found (Session.acknowledge / received).
ACKED, UNKNOWN, WRONG = "acked", "unknown", "wrong"
_EXPECTED = {"puback": (1, False), "pubcomp": (2, True), "pubrec": (2, False)}  # (qos, released)


class Link(Protocol):
    """What a session needs of the connection it is attached to (a `Client`)."""

    protocol_version: int
    info: ClientInfo  # who is connected (for hooks)
    send_window: int  # most QoS 1/2 messages in flight (v5: the client's Receive Maximum)

    def has_room(self) -> bool:
        """Whether the outbox is under its byte budget (QoS 1/2 wait in the session if not)."""

    def send_publish(self, message: Message, qos: int, retain: bool, subscription_ids: tuple,
                     packet_id: int | None, dup: bool) -> bool:
        """Encode and queue one PUBLISH; False when it was not sent (too large for the
        client, expired, not allowed, or QoS 0 over the budget), counted by the link."""

    def send_pubrel(self, packet_id: int) -> None: ...

    def close(self, reason: str, reason_code: int | None = None) -> None:
        """End the connection (v5: DISCONNECT with `reason_code`), as for an operator's kick."""

    def take_over(self) -> None:
        """Another connection claimed this session: close without touching it."""

    def may_receive(self, topic: str) -> bool:
        """Whether the client's ACL lets it read `topic` (a shared subscription skips it if not)."""


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
    key: object = None  # the persistence journal's handle on its row (persistent sessions only)


@dataclass(slots=True)
class LastWill:
    """A will and who it is from: due when the connection dies, or when the session ends."""

    will: Will
    publisher: ClientInfo

    @property
    def delay(self) -> int:
        return self.will.properties.get("will_delay_interval", 0)


@dataclass(eq=False)
class Session:
    client_id: str
    stats: BrokerStats
    max_queue_len: int
    max_queue_bytes: int = 0  # payload bytes referenced by the pending queue; 0 = no limit
    link: Link | None = None  # the connection attached to it; set by the Broker only
    info: ClientInfo | None = None  # who attached last, for hooks; set by the Broker only
    owner: str | None = None  # the username that made it (None: anonymous); only it may resume it
    expiry_interval: int = 0  # seconds after disconnect; NEVER_EXPIRES for ever
    will: LastWill | None = None
    subscriptions: dict[str, SubscriptionOptions] = field(default_factory=dict)
    inflight: dict[int, Delivery] = field(default_factory=dict)
    pending: deque | None = None  # made on first use: most sessions never queue
    awaiting_release: set[int] = field(default_factory=set)  # incoming QoS 2 ids before PUBREL
    journal: Journal | None = None  # set by the Broker for a session that outlives its connection
    _last_packet_id: int = 0
    _queued_bytes: int = 0  # payload bytes of the pending queue

    # -- outgoing ----------------------------------------------------------------------

    def deliver(self, message: Message, qos: int, retain: bool, subscription_ids: tuple = ()) -> None:
        """Send now if the window and the outbox allow, else queue (QoS 0 is never queued)."""
        link = self.link
        if qos == 0:
            if link is not None:
                link.send_publish(message, 0, retain, subscription_ids, None, False)
            return
        delivery = Delivery(message, qos, retain, subscription_ids)
        journal = self.journal
        if journal is not None:
            journal.queued(self, delivery)
        if link is not None and not self.pending and len(self.inflight) < link.send_window and link.has_room():
            self._send_new(link, delivery)
            return
        pending = self.pending
        if pending is None:
            pending = self.pending = deque()
        elif len(pending) >= self.max_queue_len:
            self._drop_oldest()
        size = len(message.payload)
        if self.max_queue_bytes:
            while pending and self._queued_bytes + size > self.max_queue_bytes:
                self._drop_oldest()
        pending.append(delivery)
        self._queued_bytes += size

    def _drop_oldest(self) -> None:
        dropped = self.pending.popleft()
        self._queued_bytes -= len(dropped.message.payload)
        self.stats.messages_dropped["queue_full"] += 1
        if self.journal is not None:
            self.journal.done(self, dropped)

    def _send_new(self, link: Link, delivery: Delivery) -> None:
        packet_id = self._next_packet_id()
        delivery.sent_at = time.monotonic()
        self.inflight[packet_id] = delivery
        journal = self.journal
        if not link.send_publish(delivery.message, delivery.qos, delivery.retain, delivery.subscription_ids,
                                 packet_id, False):
            del self.inflight[packet_id]
            if journal is not None:
                journal.done(self, delivery)
        elif journal is not None:
            journal.sent(self, packet_id, delivery)

    def _next_packet_id(self) -> int:
        packet_id = self._last_packet_id % 0xFFFF + 1
        inflight = self.inflight
        while packet_id in inflight:
            packet_id = packet_id % 0xFFFF + 1
        self._last_packet_id = packet_id
        return packet_id

    def pump(self) -> None:
        """Move pending messages into flight while the window and the outbox have room."""
        link = self.link
        if link is None or not self.pending:
            return
        now = time.monotonic()
        pending = self.pending
        while pending and len(self.inflight) < link.send_window and link.has_room():
            delivery = pending.popleft()
            self._queued_bytes -= len(delivery.message.payload)
            expires_at = delivery.message.expires_at
            if expires_at is not None and expires_at <= now:
                self.stats.messages_dropped["expired"] += 1
                if self.journal is not None:
                    self.journal.done(self, delivery)
                continue
            self._send_new(link, delivery)

    def acknowledge(self, packet_id: int, by: str | None = None) -> Delivery | str:
        """The end of a QoS 1/2 exchange: `by` is "puback" (a QoS 1 message), "pubcomp" (a
        QoS 2 message released by our PUBREL) or "pubrec" (a refusing PUBREC of a QoS 2
        message not yet released); None: whatever it is (an operator's shortcut). Returns
        the message's Delivery (it is done), UNKNOWN (no such id in flight: ignored) or WRONG
        (the id is in flight but this ack is not the one its QoS and step expect,
        MQTT-4.3.2-1 / 4.3.3-1: a protocol error, and the message stays unacknowledged)."""
        entry = self.inflight.get(packet_id)
        if entry is None:
            return UNKNOWN
        if by is not None and _EXPECTED[by] != (entry.qos, entry.released):
            return WRONG
        del self.inflight[packet_id]
        if self.journal is not None:
            self.journal.done(self, entry)
        if self.pending:
            self.pump()
        return entry

    def received(self, packet_id: int) -> str:
        """PUBREC arrived: ACKED (a QoS 2 message: answer PUBREL, it awaits PUBCOMP now; a
        repeated PUBREC gets the PUBREL again), UNKNOWN (no such id) or WRONG (a QoS 1 id)."""
        entry = self.inflight.get(packet_id)
        if entry is None:
            return UNKNOWN
        if entry.qos != 2:
            return WRONG
        entry.released = True
        entry.sent_at = time.monotonic()
        if self.journal is not None:
            self.journal.sent(self, packet_id, entry)
        return ACKED

    def resend(self, older_than: float | None = None, now: float | None = None) -> None:
        """Send again what is in flight (on reconnect, or what has waited `older_than`
        seconds for its acknowledgement by `now`)."""
        link = self.link
        if link is None:
            return
        now = time.monotonic() if now is None else now
        for packet_id, entry in list(self.inflight.items()):
            if older_than is not None and now - entry.sent_at < older_than:
                continue
            entry.sent_at = now
            if entry.released:
                link.send_pubrel(packet_id)
            elif not link.send_publish(entry.message, entry.qos, entry.retain, entry.subscription_ids,
                                       packet_id, True):
                del self.inflight[packet_id]
                if self.journal is not None:
                    self.journal.done(self, entry)

    def restore(self, inflight: list[tuple[int, Delivery]], pending: list[Delivery], awaiting: set[int]) -> None:
        """A session read back from the persistence store (before anyone attaches): what was
        in flight keeps its packet ids (resent with DUP at the reconnect), in order."""
        for packet_id, delivery in inflight:
            self.inflight[packet_id] = delivery
            self._last_packet_id = packet_id
        if pending:
            self.pending = deque(pending)
            self._queued_bytes = sum(len(delivery.message.payload) for delivery in pending)
        self.awaiting_release = awaiting

    def drop_queued(self) -> int:
        """The session ends: forget what waits for it; returns how many messages that was."""
        dropped = len(self.pending) if self.pending else 0
        self.pending = None
        self._queued_bytes = 0
        self.inflight.clear()
        return dropped

    # -- incoming QoS 2 ----------------------------------------------------------------

    def incoming_qos2(self, packet_id: int, limit: int) -> str:
        """A QoS 2 PUBLISH arrived: "new" (route it), "duplicate" (a resend before PUBREL:
        answer PUBREC, do not route again) or "full" (over the receive maximum)."""
        awaiting = self.awaiting_release
        if packet_id in awaiting:
            return "duplicate"
        if len(awaiting) >= limit:
            return "full"
        awaiting.add(packet_id)
        if self.journal is not None:
            self.journal.incoming(self, packet_id)
        return "new"

    def release(self, packet_id: int) -> bool:
        """PUBREL arrived: whether the packet id was known."""
        if packet_id in self.awaiting_release:
            self.awaiting_release.discard(packet_id)
            if self.journal is not None:
                self.journal.incoming_released(self, packet_id)
            return True
        return False

    # -- what the client may change at DISCONNECT ----------------------------------------

    def update_expiry(self, seconds: int) -> bool:
        """v5 DISCONNECT's Session Expiry Interval; False (a protocol error) if the CONNECT
        had said 0, which may not be changed (MQTT 5.0 section 3.14.2.2.2)."""
        if self.expiry_interval == 0 and seconds != 0:
            return False
        self.expiry_interval = seconds
        return True

    def take_will(self) -> LastWill | None:
        will, self.will = self.will, None
        return will
