"""The spool: the WebHook stage's table in the durable store. With `spool_dir` set, every
event the rules select is inserted when it is accepted and deleted once it is settled, so a
crash (or a restart) leaves exactly the events not yet answered 2xx (or dropped) on disk."""

from __future__ import annotations

import os

from appliance.store import Store

from .events import QueuedEvent

FILE_NAME = "webhook-spool.sqlite3"

_SCHEMA = ("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, "
           "event TEXT NOT NULL, body BLOB NOT NULL, topic TEXT, attempted INTEGER NOT NULL DEFAULT 0)")
# Spools written before topic and attempted existed: added in place.
_MIGRATIONS = {"topic": "ALTER TABLE events ADD COLUMN topic TEXT",
               "attempted": "ALTER TABLE events ADD COLUMN attempted INTEGER NOT NULL DEFAULT 0"}
# The store batches consecutive changes by statement identity: these are module constants.
_INSERT = "INSERT OR IGNORE INTO events (seq, key, event, body, topic, attempted) VALUES (?, ?, ?, ?, ?, ?)"
_DELETE = "DELETE FROM events WHERE seq = ?"
_ATTEMPTED = "UPDATE events SET attempted = 1 WHERE seq = ?"
_READ = "SELECT seq, key, topic, event, body, attempted FROM events WHERE seq > ? ORDER BY seq LIMIT ?"


def open_store(directory: str, sync: str, registry) -> Store:
    return Store(os.path.join(directory, FILE_NAME), "webhook", sync, registry)


class Spool:
    """Events on disk, ordered by `seq`. It holds its changes until the store's writer takes
    them (a `ChangeSource`), so an event delivered before its insert was taken costs no write
    at all, and on a full disk the deletes of delivered events go first and make room."""

    def __init__(self, store: Store, key_of) -> None:
        self.store = store
        self._key_of = key_of  # (client_id, topic) -> ordering key, for events read back
        store.define(_SCHEMA)
        columns = {row[1] for row in store.read("PRAGMA table_info(events)")}
        store.define(*(statement for column, statement in _MIGRATIONS.items() if column not in columns))
        self.rows_at_start, self.last_seq = store.read("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events")[0]
        self.rows = self.rows_at_start  # events in the spool, counting changes not yet committed
        self._inserts: dict[int, list] = {}  # seq -> row, not taken by the writer yet
        self._deletes: set[int] = set()  # rows to delete (their insert was taken)
        self._attempted: set[int] = set()  # rows to mark attempted (their insert was taken)
        store.register(self)

    # -- the stage's side ----------------------------------------------------------------------

    def insert(self, item: QueuedEvent) -> None:
        self._inserts[item.seq] = [item.seq, item.client_id, item.event, item.body, item.topic, 0]
        item.spooled = True
        self.rows += 1
        self.store.changed()

    def attempted(self, item: QueuedEvent) -> None:
        row = self._inserts.get(item.seq)
        if row is not None:
            row[5] = 1
        else:
            self._attempted.add(item.seq)
        self.store.changed()

    def delete(self, item: QueuedEvent) -> None:
        self.rows -= 1
        if self._inserts.pop(item.seq, None) is not None:
            return  # never written: nothing to undo
        self._attempted.discard(item.seq)
        self._deletes.add(item.seq)
        self.store.changed()

    def read_after(self, seq: int, limit: int) -> list[QueuedEvent]:
        """Up to `limit` committed events with a larger `seq`, oldest first (off the loop)."""
        key_of = self._key_of
        return [QueuedEvent(seq, key_of(client_id, topic), client_id, topic, event, body, True, bool(attempted))
                for seq, client_id, topic, event, body, attempted in self.store.query(_READ, (seq, limit))]

    # -- the store's side (ChangeSource) -------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._inserts) + len(self._deletes) + len(self._attempted)

    def take(self) -> list[tuple[str, list]]:
        groups = [(_DELETE, [(seq,) for seq in self._deletes]),
                  (_ATTEMPTED, [(seq,) for seq in self._attempted]),
                  (_INSERT, list(self._inserts.values()))]
        self._deletes, self._attempted, self._inserts = set(), set(), {}
        return groups

    def restore(self, statement: str, rows: list) -> None:
        if statement is _DELETE:
            self._deletes.update(seq for (seq,) in rows)
        elif statement is _ATTEMPTED:
            self._attempted.update(seq for (seq,) in rows if seq not in self._deletes)
        else:
            for row in rows:
                seq = row[0]
                if seq in self._deletes:  # settled while its insert was being written: neither
                    self._deletes.discard(seq)
                    continue
                if seq in self._attempted:
                    self._attempted.discard(seq)
                    row[5] = 1
                self._inserts[seq] = row
