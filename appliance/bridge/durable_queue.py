"""A send queue that survives a restart: the in-memory queue, mirrored into the shared
durable store (appliance/store: one SQLite file, group commits off the loop).

QoS 1/2 entries are rows of `bridge_send_queue`, inserted when queued and deleted when the
upstream acknowledges them or the bound drops them; at start-up the rows of this bridge are
read back, oldest first, and replayed (with DUP: they may have been sent before). QoS 0
entries stay in memory only: best effort.

The queue holds its changes until the store's writer takes them (a `ChangeSource`), so a
message the upstream acknowledged before its insert was taken costs no write at all, and on
a full disk the deletes go first and make room. `when_durable` is the store's: app.py
registers the store as a `Durable`, so a local publisher's PUBACK waits until what its
message put into this queue is on disk.
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
# The store batches consecutive changes by statement identity: these are module constants.
_INSERT = ("INSERT OR REPLACE INTO bridge_send_queue (bridge, seq, topic, payload, qos, retain, properties)"
           " VALUES (?, ?, ?, ?, ?, ?, ?)")
_DELETE = "DELETE FROM bridge_send_queue WHERE bridge = ? AND seq = ?"
_LOAD = ("SELECT seq, topic, payload, qos, retain, properties FROM bridge_send_queue"
         " WHERE bridge = ? ORDER BY seq")


def unconfigured(store, names: set[str]) -> list[tuple[str, int]]:
    """(bridge, rows) kept on disk for bridges no longer configured: kept, not sent."""
    store.define(*SCHEMA)
    return [(bridge, rows) for bridge, rows in
            store.read("SELECT bridge, COUNT(*) FROM bridge_send_queue GROUP BY bridge ORDER BY bridge")
            if bridge not in names]


class DurableSendQueue:
    """`SendQueue` over a `Store` (define / read / register / changed / when_durable)."""

    def __init__(self, store, bridge: str, max_len: int) -> None:
        self._store = store
        self._bridge = bridge
        self._memory = MemorySendQueue(max_len)
        self._stored: set[int] = set()  # seqs with a row, written or on its way
        self._inserts: dict[int, tuple] = {}  # seq -> row, not taken by the writer yet
        self._deletes: set[int] = set()  # rows to delete (their insert was taken)
        store.define(*SCHEMA)
        rows = store.read(_LOAD, (bridge,))
        kept = rows[-max_len:]
        for seq, topic, payload, qos, retain, properties in kept:
            props, _ = read_properties(properties, 0, len(properties), PacketType.PUBLISH)
            self._memory.restore(Outgoing(topic, bytes(payload), qos, bool(retain), props, seq, sent_once=True))
            self._stored.add(seq)
        self._deletes.update(seq for seq, *_ in rows[: len(rows) - len(kept)])  # a smaller bound than last run's
        self.restored = len(kept)
        self.dropped_at_start = len(rows) - len(kept)
        store.register(self)
        if self._deletes:
            store.changed()

    # -- the bridge's side (SendQueue) ----------------------------------------------------------

    def append(self, entry: Outgoing) -> Outgoing | None:
        dropped = self._memory.append(entry)
        if entry.qos:
            self._stored.add(entry.seq)
            self._inserts[entry.seq] = (self._bridge, entry.seq, entry.topic, entry.payload, entry.qos,
                                        int(entry.retain), encode_properties(entry.properties, PacketType.PUBLISH))
            self._store.changed()
        if dropped is not None:
            self._forget(dropped.seq)
        return dropped

    def next_unsent(self) -> Outgoing | None:
        return self._memory.next_unsent()

    def acknowledged(self, seq: int) -> Outgoing | None:
        entry = self._memory.acknowledged(seq)
        if entry is not None:
            self._forget(seq)
        return entry

    def rewind(self) -> None:
        self._memory.rewind()

    def kept(self) -> int:
        """Entries on disk (or on their way): what a restart finds again."""
        return len(self._stored)

    def __len__(self) -> int:
        return len(self._memory)

    def _forget(self, seq: int) -> None:
        if seq not in self._stored:
            return  # QoS 0: never written
        self._stored.discard(seq)
        if self._inserts.pop(seq, None) is None:  # written, or being written: delete the row
            self._deletes.add(seq)
            self._store.changed()

    # -- the store's side (ChangeSource) -------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._inserts) + len(self._deletes)

    def take(self) -> list[tuple[str, list]]:
        groups = [(_DELETE, [(self._bridge, seq) for seq in self._deletes]), (_INSERT, list(self._inserts.values()))]
        self._deletes, self._inserts = set(), {}
        return groups

    def restore(self, statement: str, rows: list) -> None:
        if statement is _DELETE:
            self._deletes.update(seq for _, seq in rows)
            return
        for row in rows:
            seq = row[1]
            if seq in self._deletes:  # acknowledged while its insert was being written: neither
                self._deletes.discard(seq)
            else:
                self._inserts[seq] = row
