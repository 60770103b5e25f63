"""The disk spool: events that did not fit in memory, or arrived while the endpoint was
down, kept in SQLite (standard library) until they are delivered, across restarts too.

Every write is one transaction, fsync'd (WAL, synchronous=FULL) and run in gevent's thread
pool, so a slow disk stalls the spool greenlet, never the MQTT connections.
"""

from __future__ import annotations

import os
import sqlite3

import gevent
from gevent.lock import BoundedSemaphore

from .queue import QueuedEvent

FILE_NAME = "webhook-spool.sqlite3"

_SCHEMA = "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, " \
          "event TEXT NOT NULL, body BLOB NOT NULL)"


class Spool:
    """Events on disk, ordered by their `seq`."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, FILE_NAME)
        self._lock = BoundedSemaphore()  # one statement at a time on the one connection
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self.rows, self.last_seq = self._db.execute("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events").fetchone()

    def _run(self, function, *args):
        with self._lock:
            return gevent.get_hub().threadpool.apply(function, args)

    def append(self, items: list[QueuedEvent]) -> None:
        """Write events (one fsync'd transaction); an event already there is left alone."""
        rows = [(item.seq, item.key, item.event, item.body) for item in items]
        added = self._run(self._write, "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)", rows)
        self.rows += added

    def read_after(self, seq: int, limit: int) -> list[QueuedEvent]:
        """Up to `limit` events with a larger `seq`, oldest first, marked as spooled."""
        rows = self._run(self._read, seq, limit)
        return [QueuedEvent(*row, spooled=True) for row in rows]

    def delete(self, seqs: list[int]) -> None:
        deleted = self._run(self._write, "DELETE FROM events WHERE seq = ?", [(seq,) for seq in seqs])
        self.rows -= deleted

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statement: str, rows: list[tuple]) -> int:
        with self._db:  # BEGIN ... COMMIT, or ROLLBACK on error
            self._db.execute("BEGIN")
            return self._db.executemany(statement, rows).rowcount

    def _read(self, seq: int, limit: int) -> list[tuple]:
        return self._db.execute("SELECT seq, key, event, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                (seq, limit)).fetchall()
