"""Outgoing QoS 1/2 deliveries of persistent sessions in the store: one row per commit.

A delivery to a connected subscriber lives a millisecond or two (queued, sent,
acknowledged). Stored as a table row each, nearly every one was inserted by one commit and
deleted by the next, and that B-tree work was most of what persistence cost a fan-in to one
subscriber (bench/persistence). So a commit writes every delivery queued since the last one
as one pickled batch (a row of `persist_queue_batches`), plus one row of changes
(`persist_queue_changes`: packet ids given, PUBRECs received, deliveries finished) to
deliveries written by earlier commits, and deletes a batch once all of its deliveries are
finished. A batch that a few deliveries keep alive (an offline subscriber's, among others
long acknowledged) is rewritten once it is old and half finished: its live deliveries move
into the commit's new batch, so the file holds at most about twice what is live.

Batches and change rows are numbered by the commit that wrote them; reading back (`load`)
goes commit by commit, each one's changes, then its batch. At start-up everything read is
rewritten by the first commit (one batch), which also deletes the rows read: the journal
then knows every row in the file.
"""

from __future__ import annotations

import io
import json
import pickle
import time
from collections import deque

from ..broker.message import Message
from ..broker.session import Delivery, Session
from ..store import GivenBack
from .codec import MESSAGE_COLUMNS, load_properties

TABLES = (
    "CREATE TABLE IF NOT EXISTS persist_queue_batches (id INTEGER PRIMARY KEY, deliveries BLOB)",
    "CREATE TABLE IF NOT EXISTS persist_queue_changes (id INTEGER PRIMARY KEY, changes BLOB)",
)
PUT_BATCH = "INSERT INTO persist_queue_batches VALUES (?, ?)"
PUT_CHANGES = "INSERT INTO persist_queue_changes VALUES (?, ?)"
DELETE_BATCH = "DELETE FROM persist_queue_batches WHERE id = ?"
DELETE_CHANGES = "DELETE FROM persist_queue_changes WHERE id = ?"
DELETE_BATCHES_READ = "DELETE FROM persist_queue_batches WHERE id < ?"
DELETE_CHANGES_READ = "DELETE FROM persist_queue_changes WHERE id < ?"
# The table of one row per delivery that stores written before batches have: read, then emptied.
LEGACY_TABLE = "persist_queue"
DELETE_LEGACY = f"DELETE FROM {LEGACY_TABLE}"

PICKLE_PROTOCOL = 5
# Commits a batch stays young: acknowledgements of a connected subscriber are still coming.
# An older one is rewritten when half of it is finished.
MOVE_AGE = 8
WRITTEN_BEFORE_START = -1  # the batch of a delivery read at start-up (rewritten by the first commit)
FINISHED = -2


class QueueRow:
    """The journal's handle on one delivery (`Delivery.key`): where its row is."""

    __slots__ = ("seq", "client_id", "packet_id", "batch")

    def __init__(self, seq: int, client_id: str, packet_id: int | None, batch: int) -> None:
        self.seq = seq
        self.client_id = client_id
        self.packet_id = packet_id  # None while pending
        self.batch = batch  # the commit whose batch holds it; 0: not written yet


class _Batch:
    __slots__ = ("size", "live", "finished", "change_rows")

    def __init__(self, size: int) -> None:
        self.size = size
        self.live: dict[int, Delivery] = {}  # seq -> a delivery not finished yet
        self.finished: list[int] = []  # seqs finished since the last commit
        self.change_rows: list[int] = []  # change rows that name deliveries of this batch


class QueueJournal:
    """The queue part of the `Journal`, and a `ChangeSource` of the store."""

    def __init__(self, store, loaded: "LoadedQueue") -> None:
        self._changed = store.changed
        self._next_seq = loaded.next_seq
        self._next_commit = loaded.next_commit
        self._unwritten: dict[int, Delivery] = {}  # seq -> a delivery for the next batch, in order
        self._batches: dict[int, _Batch] = {}
        self._young: deque[int] = deque()  # batches not yet MOVE_AGE commits old, oldest first
        self._touched: set[int] = set()  # batches with deliveries finished since the last commit
        self._updates: dict[int, tuple[int, int, bool]] = {}  # seq -> (batch, packet id, released)
        self._change_rows: dict[int, set[int]] = {}  # change row -> batches it still changes
        self._given_back = GivenBack()
        self.restore = self._given_back.restore
        self._cleanup: list[tuple[str, list]] = []
        for delivery in loaded.deliveries:
            self._unwritten[delivery.key.seq] = delivery
        if loaded.read_up_to:
            self._cleanup = [(DELETE_BATCHES_READ, [(loaded.read_up_to,)]),
                             (DELETE_CHANGES_READ, [(loaded.read_up_to,)])]
        if loaded.legacy:
            self._cleanup.append((DELETE_LEGACY, [()]))
        if self._cleanup or self._unwritten:
            self._changed()

    # -- the Journal's queue calls (on the loop, for every QoS 1/2 delivery to a persistent session)

    def queued(self, session: Session, delivery: Delivery) -> None:
        seq = self._next_seq
        self._next_seq = seq + 1
        delivery.key = QueueRow(seq, session.client_id, None, 0)
        self._unwritten[seq] = delivery
        self._changed()

    def sent(self, session: Session, packet_id: int, delivery: Delivery) -> None:
        row = delivery.key
        if row is None or row.batch == FINISHED:
            return
        row.packet_id = packet_id
        if row.batch > 0:  # written: the next commit records the change (unwritten: its batch will hold it)
            self._updates[row.seq] = (row.batch, packet_id, delivery.released)
            self._changed()

    def done(self, session: Session, delivery: Delivery) -> None:
        row = delivery.key
        if row is None:
            return
        batch_id = row.batch
        if batch_id <= 0:  # not written yet, or read at start-up: nothing to undo, unless finished
            if batch_id != FINISHED:
                row.batch = FINISHED
                del self._unwritten[row.seq]
            return
        row.batch = FINISHED
        seq = row.seq
        batch = self._batches[batch_id]
        del batch.live[seq]
        batch.finished.append(seq)
        self._touched.add(batch_id)
        self._changed()

    # -- ChangeSource --------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._unwritten) + len(self._updates) + len(self._touched) + self._given_back.rows

    def take(self) -> list[tuple[str, list]]:
        commit = self._next_commit
        self._next_commit = commit + 1
        finished: list[tuple] = []  # batches whose every delivery is finished: deleted first
        moved: list[tuple] = []  # batches rewritten into this commit's: deleted after it is written
        dead_change_rows: list[tuple] = []
        deliveries = list(self._unwritten.values())
        self._unwritten = {}

        young, batches = self._young, self._batches
        old = commit - MOVE_AGE
        changes: dict[int, tuple | None] = {}  # seq -> (packet id, released), or None: finished
        changed: set[int] = set()  # the batches `changes` is about
        for seq, (batch_id, packet_id, released) in self._updates.items():
            if batch_id in batches:  # a change to a finished or rewritten batch is moot
                changes[seq] = (packet_id, released)
                changed.add(batch_id)
        self._updates = {}
        # Each batch that had deliveries finished, and each that just grew old, is forgotten
        # (all finished), rewritten into this commit's (old and half finished) or kept, its
        # newly finished deliveries recorded as changes.
        due = self._touched
        while young and young[0] <= old:
            due.add(young.popleft())
        self._touched = set()
        for batch_id in due:
            batch = batches.get(batch_id)
            if batch is None:
                continue
            if not batch.live:
                self._forget(batch_id, finished, dead_change_rows)
            elif batch_id <= old and 2 * len(batch.live) <= batch.size:
                deliveries += batch.live.values()
                self._forget(batch_id, moved, dead_change_rows)
            elif batch.finished:
                changes.update(dict.fromkeys(batch.finished))
                batch.finished = []
                changed.add(batch_id)
        changed.intersection_update(batches)  # (updates of batches forgotten just now are moot)
        if not changed:
            changes = {}

        groups = self._given_back.take()
        if finished:
            groups.append((DELETE_BATCH, finished))
        if deliveries:
            batch = batches[commit] = _Batch(len(deliveries))
            groups.append((PUT_BATCH, [(commit, self._encode(deliveries, commit, batch.live))]))
            young.append(commit)
        if changes:
            groups.append((PUT_CHANGES, [(commit, pickle.dumps(changes, PICKLE_PROTOCOL))]))
            self._change_rows[commit] = changed
            for batch_id in changed:
                batches[batch_id].change_rows.append(commit)
        if moved:
            groups.append((DELETE_BATCH, moved))
        if dead_change_rows:
            groups.append((DELETE_CHANGES, dead_change_rows))
        if self._cleanup:
            groups += self._cleanup  # after the rewrite of what they delete, in the same commit
            self._cleanup = []
        return groups

    def _forget(self, batch_id: int, deletes: list, dead_change_rows: list) -> None:
        batch = self._batches.pop(batch_id)
        deletes.append((batch_id,))
        for change_row in batch.change_rows:
            amends = self._change_rows[change_row]
            amends.discard(batch_id)
            if not amends:
                del self._change_rows[change_row]
                dead_change_rows.append((change_row,))

    @staticmethod
    def _encode(deliveries: list[Delivery], commit: int, live: dict[int, Delivery]) -> bytes:
        """The batch row of `deliveries`, which commit number `commit` writes (and `live` holds).
        A message queued for many sessions is one object: pickle writes its payload once."""
        to_wall = time.time() - time.monotonic()
        rows = []
        for delivery in deliveries:
            message = delivery.message
            expires = message.expires_at
            row = delivery.key
            row.batch = commit
            seq = row.seq
            live[seq] = delivery
            rows.append((seq, row.client_id, row.packet_id, delivery.released, delivery.qos, delivery.retain,
                         delivery.subscription_ids, message.topic, message.payload, message.qos, message.retain,
                         message.publisher_id, message.publisher_username, message.timestamp_ms,
                         message.properties, None if expires is None else expires + to_wall))
        return pickle.dumps(rows, PICKLE_PROTOCOL)


class _PlainData(pickle.Unpickler):
    """Reads only what `take` writes (tuples, dicts, numbers, strings, bytes): a file that
    names a class or a function is not ours, and is never run."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"it names {module}.{name}")


def _unpickle(blob: bytes):
    try:
        return _PlainData(io.BytesIO(blob)).load()
    except Exception as error:  # noqa: BLE001 - whatever a damaged row makes pickle raise
        raise ValueError(f"queue batch: {error}") from None


class LoadedQueue:
    """What the store holds of the queues, read at start-up, as `Delivery`s per session."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []  # in seq order; their `key`s say session and packet id
        self.next_seq = 1
        self.next_commit = 1
        self.read_up_to = 0  # rows numbered below this were read (the first commit deletes them)
        self.legacy = False

    @classmethod
    def read(cls, store, sessions: set[str]) -> "LoadedQueue":
        """Every delivery of a session in `sessions` (others cannot be, unless the file was
        edited), with the state the last commit gave it."""
        loaded = cls()
        rows: dict[int, list] = {}
        last_seq = 0
        if store.read(f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{LEGACY_TABLE}'"):
            loaded.legacy = True
            for seq, client_id, packet_id, released, qos, retain, ids, topic, payload, mqos, mretain, \
                    publisher_id, username, timestamp_ms, properties, expires in store.read(
                    f"SELECT seq, client_id, packet_id, released, delivery_qos, delivery_retain, "
                    f"subscription_ids, {MESSAGE_COLUMNS} FROM {LEGACY_TABLE} ORDER BY seq"):
                last_seq = seq
                rows[seq] = [client_id, packet_id, bool(released), qos, bool(retain),
                             tuple(json.loads(ids)) if ids else (),
                             (topic, bytes(payload), mqos, bool(mretain), publisher_id, username, timestamp_ms,
                              load_properties(properties), expires)]
        commits: dict[int, list] = {}
        for commit, blob in store.read("SELECT id, changes FROM persist_queue_changes"):
            commits.setdefault(commit, [None, None])[0] = _unpickle(blob)
        for commit, blob in store.read("SELECT id, deliveries FROM persist_queue_batches"):
            commits.setdefault(commit, [None, None])[1] = _unpickle(blob)
        for commit in sorted(commits):
            changes, batch = commits[commit]
            for seq, change in (changes or {}).items():
                last_seq = max(last_seq, seq)
                row = rows.get(seq)
                if change is None:
                    rows.pop(seq, None)
                elif row is not None:
                    row[1], row[2] = change
            for seq, client_id, packet_id, released, qos, retain, ids, *message in batch or ():
                last_seq = max(last_seq, seq)
                rows[seq] = [client_id, packet_id, released, qos, retain, ids, message]
        if commits:
            loaded.read_up_to = loaded.next_commit = max(commits) + 1
        loaded.next_seq = last_seq + 1
        to_monotonic = time.monotonic() - time.time()
        for seq in sorted(rows):
            client_id, packet_id, released, qos, retain, ids, message = rows[seq]
            if client_id not in sessions:
                continue
            topic, payload, mqos, mretain, publisher_id, username, timestamp_ms, properties, expires = message
            message = Message(topic, payload, mqos, mretain, publisher_id, username, timestamp_ms, properties,
                              None if expires is None else expires + to_monotonic)
            delivery = Delivery(message, qos, retain, ids, 0.0, released)
            delivery.key = QueueRow(seq, client_id, packet_id, WRITTEN_BEFORE_START)
            loaded.deliveries.append(delivery)
        return loaded
