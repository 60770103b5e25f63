"""The durable send queue against the real shared store (appliance/store, SQLite on disk):
what was queued and not acknowledged is there again, in order, after the store is reopened."""

from __future__ import annotations

from gevent.event import Event

from appliance import store as store_module
from appliance.bridge.durable_queue import DurableSendQueue
from appliance.bridge.queue import Outgoing


def open_store(path):
    return store_module.Store(str(path), "test", sync="os")


def durable(store) -> None:
    done = Event()
    store.when_durable(done.set)
    assert done.wait(10)


def test_unacknowledged_entries_survive_a_reopen_in_order_with_dup(tmp_path):
    store = open_store(tmp_path / "state.db")
    queue = DurableSendQueue(store, "up", 100)
    store.start()
    for n in range(5):
        queue.append(Outgoing("t/x", str(n).encode(), 1, n == 4, {"user_property": [("k", str(n))]}))
    queue.append(Outgoing("t/zero", b"q0", 0, False))  # QoS 0: memory only
    first = queue.next_unsent()
    queue.acknowledged(first.seq)
    durable(store)
    store.close()

    store = open_store(tmp_path / "state.db")
    again = DurableSendQueue(store, "up", 100)
    entries = [again.next_unsent() for _ in range(len(again))]
    assert [e.payload for e in entries] == [b"1", b"2", b"3", b"4"]
    assert all(e.sent_once for e in entries)  # replayed with DUP
    assert entries[3].retain and entries[0].properties == {"user_property": [("k", "1")]}
    assert DurableSendQueue(store, "other-bridge", 100).next_unsent() is None  # rows are per bridge
    store.close()


def test_the_bound_drops_the_oldest_rows_too(tmp_path):
    store = open_store(tmp_path / "state.db")
    queue = DurableSendQueue(store, "up", 3)
    store.start()
    for n in range(5):
        queue.append(Outgoing("t", str(n).encode(), 1, False))
    durable(store)
    store.close()
    store = open_store(tmp_path / "state.db")
    again = DurableSendQueue(store, "up", 2)  # a smaller bound after a restart keeps the newest
    assert [again.next_unsent().payload for _ in range(2)] == [b"3", b"4"]
    assert again.dropped_at_start == 1
    store.close()


def test_an_entry_acknowledged_before_the_writer_took_it_costs_no_row(tmp_path):
    store = open_store(tmp_path / "state.db")
    queue = DurableSendQueue(store, "up", 100)
    store.start()
    queue.append(Outgoing("t", b"fast", 1, False))
    queue.acknowledged(queue.next_unsent().seq)  # the upstream was quicker than the disk
    assert queue.pending == 0
    queue.append(Outgoing("t", b"slow", 1, False))
    durable(store)
    assert [row[0] for row in store.query("SELECT payload FROM bridge_send_queue")] == [b"slow"]
    queue.acknowledged(queue.next_unsent().seq)
    durable(store)
    assert store.query("SELECT COUNT(*) FROM bridge_send_queue") == [(0,)]
    store.close()


def test_a_failed_commit_keeps_the_rows_and_an_ack_meanwhile_cancels_both(tmp_path):
    store = open_store(tmp_path / "state.db")
    queue = DurableSendQueue(store, "up", 100)
    queue.append(Outgoing("t", b"a", 1, False))
    queue.append(Outgoing("t", b"b", 1, False))
    taken = queue.take()  # the writer took both inserts; then their commit fails
    queue.acknowledged(queue.next_unsent().seq)  # "a" acknowledged while it was being written
    for statement, rows in taken:
        queue.restore(statement, rows)
    assert queue.pending == 1 and queue.kept() == 1
    store.start()
    durable(store)
    assert [row[0] for row in store.query("SELECT payload FROM bridge_send_queue")] == [b"b"]
    store.close()


def test_rows_of_a_bridge_no_longer_configured_are_reported_not_lost(tmp_path):
    from appliance.bridge.durable_queue import unconfigured

    store = open_store(tmp_path / "state.db")
    queue = DurableSendQueue(store, "gone", 10)
    store.start()
    queue.append(Outgoing("t", b"x", 1, False))
    durable(store)
    store.close()
    store = open_store(tmp_path / "state.db")
    assert unconfigured(store, {"up"}) == [("gone", 1)]
    assert unconfigured(store, {"gone"}) == []
    store.close()
