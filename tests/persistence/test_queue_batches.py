"""Queued and in-flight deliveries are written one batch row per commit (appliance/persistence/
queue.py): what a restart reads back is exactly what was live, in order, with its packet id and
QoS 2 step, and a few deliveries of an offline session do not keep a busy session's long
acknowledged ones on disk. A real store file; the broker's calls made directly."""

from __future__ import annotations

import pickle
import sqlite3

from appliance.broker.message import Message
from appliance.broker.session import Delivery
from appliance.persistence.journal import TABLES
from appliance.persistence.queue import MOVE_AGE, LoadedQueue, QueueJournal
from appliance.store import Store


class _Session:
    def __init__(self, client_id: str) -> None:
        self.client_id = client_id


def _open(path) -> tuple[Store, QueueJournal]:
    store = Store(str(path / "persistence.db"), "test", "os")
    store.define(*TABLES)
    queue = QueueJournal(store, LoadedQueue.read(store, {"offline", "busy"}))
    store.register(queue)
    store.start()
    return store, queue


def _delivery(topic: str, payload: bytes, qos: int = 1) -> Delivery:
    return Delivery(Message(topic, payload, qos, False, "pub", None, 0,
                            {"user_property": [("k", "v")], "correlation_data": b"\x00\x01"}), qos, False, (7,))


def _read_back(path) -> list[tuple]:
    store = Store(str(path / "persistence.db"), "check", "os")
    store.define(*TABLES)
    loaded = LoadedQueue.read(store, {"offline", "busy"})
    store.close()
    return [(d.key.client_id, d.key.packet_id, d.released, d.message.topic, d.message.payload,
             d.message.properties, d.subscription_ids) for d in loaded.deliveries]


def _rows(path, table: str) -> int:
    with sqlite3.connect(path / "persistence.db") as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_what_was_live_at_the_last_commit_is_read_back_in_order_with_its_state(tmp_path):
    store, queue = _open(tmp_path)
    offline, busy = _Session("offline"), _Session("busy")
    kept = [_delivery(f"kept/{n}", bytes([n]), qos=2) for n in range(3)]
    for delivery in kept:
        queue.queued(offline, delivery)
    gone = _delivery("gone", b"g")
    queue.queued(busy, gone)
    store.wait_durable()
    queue.sent(offline, 11, kept[0])
    kept[0].released = True  # its PUBREC came: PUBREL next, never the PUBLISH again
    queue.sent(offline, 11, kept[0])
    queue.sent(offline, 12, kept[1])
    queue.done(busy, gone)
    store.wait_durable()
    store.close()

    assert _read_back(tmp_path) == [
        ("offline", 11, True, "kept/0", b"\x00", {"user_property": [("k", "v")], "correlation_data": b"\x00\x01"},
         (7,)),
        ("offline", 12, False, "kept/1", b"\x01", {"user_property": [("k", "v")], "correlation_data": b"\x00\x01"},
         (7,)),
        ("offline", None, False, "kept/2", b"\x02", {"user_property": [("k", "v")], "correlation_data": b"\x00\x01"},
         (7,)),
    ]


def test_a_few_offline_deliveries_do_not_keep_a_busy_sessions_finished_ones_on_disk(tmp_path):
    store, queue = _open(tmp_path)
    offline, busy = _Session("offline"), _Session("busy")
    waiting = []
    commits = 20 * MOVE_AGE
    for commit in range(commits):
        delivery = _delivery("offline/t", b"%d" % commit)
        queue.queued(offline, delivery)  # one delivery of the offline session per commit...
        waiting.append(delivery)
        acknowledged = [_delivery("busy/t", b"x" * 100) for _ in range(50)]
        for delivery in acknowledged:
            queue.queued(busy, delivery)  # ...among fifty of a connected one
        store.wait_durable()
        for delivery in acknowledged:
            queue.done(busy, delivery)  # acknowledged after they were written
    store.wait_durable()

    # The batches still on disk: the young ones, and the live ones rewritten together.
    assert _rows(tmp_path, "persist_queue_batches") <= MOVE_AGE + commits // MOVE_AGE
    live_rows = len(waiting)
    written = _rows_held(tmp_path)
    assert written <= 2 * live_rows + MOVE_AGE * 51
    store.close()
    assert [payload for _, _, _, _, payload, _, _ in _read_back(tmp_path)] == [b"%d" % n for n in range(commits)]


def _rows_held(path) -> int:
    """Deliveries in the file's batches, live or not."""
    with sqlite3.connect(path / "persistence.db") as db:
        return sum(len(pickle.loads(blob)) for blob, in db.execute("SELECT deliveries FROM persist_queue_batches"))


def test_a_restart_rewrites_what_it_read_and_forgets_the_rest(tmp_path):
    store, queue = _open(tmp_path)
    offline = _Session("offline")
    deliveries = [_delivery("t", bytes([n])) for n in range(4)]
    for delivery in deliveries:
        queue.queued(offline, delivery)
        store.wait_durable()  # four batches
    queue.done(offline, deliveries[1])
    store.wait_durable()
    store.close()

    store, queue = _open(tmp_path)  # reads three, writes them as one batch
    store.wait_durable()
    assert _rows(tmp_path, "persist_queue_batches") == 1
    assert _rows(tmp_path, "persist_queue_changes") == 0
    store.close()
    assert [payload for _, _, _, _, payload, _, _ in _read_back(tmp_path)] == [b"\x00", b"\x02", b"\x03"]


def test_a_store_with_one_row_per_delivery_is_read_and_rewritten(tmp_path):
    """Stores written before batches held a `persist_queue` table."""
    with sqlite3.connect(tmp_path / "persistence.db") as db:
        db.execute("CREATE TABLE persist_queue (seq INTEGER PRIMARY KEY, client_id TEXT, packet_id INTEGER, "
                   "released INTEGER, delivery_qos INTEGER, delivery_retain INTEGER, subscription_ids TEXT, "
                   "topic TEXT, payload BLOB, qos INTEGER, retain INTEGER, publisher_id TEXT, "
                   "publisher_username TEXT, timestamp_ms INTEGER, properties TEXT, expires REAL)")
        db.execute("INSERT INTO persist_queue VALUES (5, 'offline', 3, 0, 1, 0, '[2]', 'old/t', x'aa', 1, 0, "
                   "'pub', NULL, 0, NULL, NULL)")
    store, queue = _open(tmp_path)
    store.wait_durable()
    store.close()
    assert _rows(tmp_path, "persist_queue") == 0
    assert _read_back(tmp_path) == [("offline", 3, False, "old/t", b"\xaa", {}, (2,))]
