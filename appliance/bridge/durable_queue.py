"""A send queue that survives a restart: the in-memory queue, mirrored into the shared
durable store (appliance/store: one SQLite file, group commits off the loop).

QoS 1/2 entries are rows of `bridge_send_queue`, inserted when queued and deleted when the
upstream acknowledges them or the bound drops them; at start-up the rows of this bridge are
read back, oldest first, and replayed (with DUP: they may have been sent before). QoS 0
entries stay in memory only: best effort. The store calls back through `when_durable` once
everything queued is on disk, which is what the broker's durability barrier waits for
before it acknowledges a client's PUBLISH (app.py registers the store as a `Durable`).
"""

from __future__ import annotations

from ..mqtt.packets import PacketType
from ..mqtt.properties import encode_properties, read_properties
from .queue import MemorySendQueue, Outgoing

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bridge_send_queue ("
    " bridge TEXT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,"
    " qos INTEGER NOT NULL, retain INTEGER NOT NULL, properties BLOB NOT NULL,"
    " PRIMARY KEY (bridge, seq)) WITHOUT ROWID",
)
_INSERT = ("INSERT OR REPLACE INTO bridge_send_queue (bridge, seq, topic, payload, qos, retain, properties)"
           " VALUES (?, ?, ?, ?, ?, ?, ?)")
_DELETE = "DELETE FROM bridge_send_queue WHERE bridge = ? AND seq = ?"
_LOAD = ("SELECT seq, topic, payload, qos, retain, properties FROM bridge_send_queue"
         " WHERE bridge = ? ORDER BY seq")


class DurableSendQueue:
    """`SendQueue` over a `Store` (define / read / write / when_durable)."""

    def __init__(self, store, bridge: str, max_len: int) -> None:
        self._store = store
        self._bridge = bridge
        self._memory = MemorySendQueue(max_len)
        self._stored: set[int] = set()  # seqs with a row (the link may lower an entry's QoS later)
        store.define(*SCHEMA)
        rows = store.read(_LOAD, (bridge,))
        for seq, topic, payload, qos, retain, properties in rows[-max_len:]:
            props, _ = read_properties(properties, 0, len(properties), PacketType.PUBLISH)
            self._memory.restore(Outgoing(topic, bytes(payload), qos, bool(retain), props, seq, sent_once=True))
            self._stored.add(seq)
        for seq, *_ in rows[:-max_len]:  # a smaller bound than last run's: the oldest go
            store.write(_DELETE, (bridge, seq))
        self.restored = min(len(rows), max_len)
        self.dropped_at_start = len(rows) - self.restored

    def append(self, entry: Outgoing) -> Outgoing | None:
        dropped = self._memory.append(entry)
        if entry.qos:
            self._stored.add(entry.seq)
            self._store.write(_INSERT, (self._bridge, entry.seq, entry.topic, entry.payload, entry.qos,
                                        int(entry.retain), encode_properties(entry.properties, PacketType.PUBLISH)))
        if dropped is not None and dropped.seq in self._stored:
            self._stored.discard(dropped.seq)
            self._store.write(_DELETE, (self._bridge, dropped.seq))
        return dropped

    def next_unsent(self) -> Outgoing | None:
        return self._memory.next_unsent()

    def acknowledged(self, seq: int) -> Outgoing | None:
        entry = self._memory.acknowledged(seq)
        if entry is not None and seq in self._stored:
            self._stored.discard(seq)
            self._store.write(_DELETE, (self._bridge, seq))
        return entry

    def rewind(self) -> None:
        self._memory.rewind()

    def when_durable(self, callback) -> None:
        self._store.when_durable(callback)

    def __len__(self) -> int:
        return len(self._memory)
