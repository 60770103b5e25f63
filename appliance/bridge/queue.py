"""The send queue of one bridge: messages waiting for the upstream, in order, until acknowledged.

`SendQueue` is the interface the link works against; `MemorySendQueue` is the bounded
in-memory one. A durable queue (sqlite, the shared store) implements the same methods and
keeps entries across a restart; nothing else changes.

An entry stays in the queue from `append` until the upstream acknowledges it (PUBACK for
QoS 1, PUBCOMP for QoS 2; QoS 0 when written). `next_unsent` hands entries out in order;
after a reconnect `rewind` makes every unacknowledged entry unsent again, so replay keeps
the original order. Over `max_len`, the oldest entry is dropped (sent or not) and returned
so the caller can count it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class Outgoing:
    """One message as it will be published upstream."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: dict = field(default_factory=dict)
    seq: int = 0  # assigned by the queue: order of arrival
    sent_once: bool = False  # set when first written: a resend carries DUP


class SendQueue(Protocol):  # MemorySendQueue here; DurableSendQueue (durable_queue.py) on disk
    def append(self, entry: Outgoing) -> Outgoing | None:
        """Queue `entry`; returns the entry dropped to make room, if any."""

    def next_unsent(self) -> Outgoing | None:
        """The oldest entry not yet handed out since the last rewind."""

    def acknowledged(self, seq: int) -> Outgoing | None:
        """Forget an entry the upstream has acknowledged; None if it was already gone."""

    def rewind(self) -> None:
        """Every unacknowledged entry is unsent again (called on each new connection)."""

    def __len__(self) -> int:
        """Entries held, sent-but-unacknowledged included."""


class MemorySendQueue:
    """Bounded, in memory: lost on restart (the docs say so), dropped oldest-first when full."""

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self._entries: OrderedDict[int, Outgoing] = OrderedDict()
        self._unsent: deque[int] = deque()
        self._next_seq = 0

    def append(self, entry: Outgoing) -> Outgoing | None:
        dropped = None
        if len(self._entries) >= self.max_len:
            _, dropped = self._entries.popitem(last=False)
        self._next_seq += 1
        entry.seq = self._next_seq
        self._entries[entry.seq] = entry
        self._unsent.append(entry.seq)
        return dropped

    def next_unsent(self) -> Outgoing | None:
        unsent, entries = self._unsent, self._entries
        while unsent:
            entry = entries.get(unsent.popleft())
            if entry is not None:  # skip entries dropped or acknowledged meanwhile
                return entry
        return None

    def acknowledged(self, seq: int) -> Outgoing | None:
        return self._entries.pop(seq, None)

    def restore(self, entry: Outgoing) -> None:
        """Put back an entry kept from an earlier run (its `seq` kept, oldest first)."""
        self._entries[entry.seq] = entry
        self._unsent.append(entry.seq)
        self._next_seq = max(self._next_seq, entry.seq)

    def rewind(self) -> None:
        self._unsent = deque(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
