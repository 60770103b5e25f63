"""The Backlog alone (in process, a real store file): per-key order, the memory bound, spill
to disk and replay without duplicates, and what a restart finds."""

from __future__ import annotations

import gevent

from appliance.webhook.backlog import KEY_AHEAD, Backlog
from appliance.webhook.events import QueuedEvent, ordering_key
from appliance.webhook.keyed_queue import KeyedQueue
from appliance.webhook.spool import Spool, open_store


def event(seq, client="a", topic=None):
    return QueuedEvent(seq, client, client, topic, "message_publish", b"body%d" % seq)


def test_one_event_per_key_in_flight_and_keys_taken_in_the_order_they_became_ready():
    queue = KeyedQueue()
    for seq, key in enumerate("aabab", 1):
        queue.put(event(seq, key))
    first, second = queue.take(), queue.take()
    assert (first.seq, second.seq) == (1, 3)  # a's first, then b's first: a is busy
    waiter = gevent.spawn(queue.take)
    gevent.sleep(0)
    assert not waiter.dead  # every ready key is in flight: nothing to take
    queue.done(first)
    assert waiter.get(timeout=1).seq == 2
    assert queue.depth == 2


def test_drop_oldest_takes_the_first_waiting_event_of_the_oldest_key():
    queue = KeyedQueue()
    for seq, key in enumerate("abab", 1):
        queue.put(event(seq, key))
    assert queue.drop_oldest().seq == 1
    assert [queue.take().seq, queue.take().seq] == [3, 2]  # a's next, then b's first
    assert queue.depth == 1


def test_unordered_events_go_to_any_worker():
    queue = KeyedQueue()
    for seq in range(1, 4):
        queue.put(QueuedEvent(seq, None, "c", None, "message_publish", b""))
    assert [queue.take().seq for _ in range(3)] == [1, 2, 3]  # none done: all in flight at once


def test_without_a_spool_a_full_memory_evicts_the_oldest():
    backlog = Backlog(3, None)
    evicted = [backlog.put(event(seq))[0] for seq in range(1, 6)]
    assert [e.seq if e else None for e in evicted] == [None, None, None, 1, 2]
    assert backlog.depth == 3


def test_spill_and_replay_keep_order_once_each_and_leave_the_spool_empty(tmp_path):
    store = open_store(str(tmp_path), "os", None)
    spool = Spool(store, ordering_key("client"))
    backlog = Backlog(10, spool)
    store.start()
    backlog.start()
    for seq in range(1, 61):
        assert backlog.put(event(seq, "ab"[seq % 2])) == (None, None)
    assert backlog.depth == 10 and backlog.spilled == 50
    seen = {"a": [], "b": []}

    def worker():
        while True:
            item = backlog.take()
            seen[item.key].append(item.seq)
            gevent.sleep(0)
            backlog.settle(item)

    workers = [gevent.spawn(worker) for _ in range(3)]
    while len(seen["a"]) + len(seen["b"]) < 60:
        gevent.sleep(0.01)
    gevent.killall(workers)
    backlog.stop()
    assert seen == {"a": list(range(2, 61, 2)), "b": list(range(1, 61, 2))}
    store.wait_durable()
    assert store.query("SELECT COUNT(*) FROM events") == [(0,)]
    assert store.close() == 0


def test_a_restart_finds_every_unsettled_event_and_which_were_attempted(tmp_path):
    store = open_store(str(tmp_path), "fsync", None)
    spool = Spool(store, ordering_key("topic"))
    backlog = Backlog(100, spool)
    store.start()
    for seq in range(1, 21):
        backlog.put(QueuedEvent(seq, f"t/{seq % 3}", "c", f"t/{seq % 3}", "message_publish", b"x"))
    first = backlog.take()
    backlog.mark_attempted(first, 0)
    settled = backlog.take()
    backlog.settle(settled)
    store.close()

    store = open_store(str(tmp_path), "fsync", None)
    spool = Spool(store, ordering_key("client"))  # the scope may change across a restart
    assert (spool.rows_at_start, spool.last_seq) == (19, 20)
    backlog = Backlog(100, spool)
    store.start()
    backlog.start()
    items = [backlog.take() for _ in range(1)]
    while backlog.depth < 18:
        gevent.sleep(0.01)
    items += [backlog.memory.drain()][0]
    assert [i.seq for i in items] == [s for s in range(1, 21) if s != settled.seq]
    marked = [i.seq for i in items if i.attempted]  # first, and the next ones of its key marked ahead
    assert marked[0] == first.seq and 1 < len(marked) <= 1 + KEY_AHEAD
    assert all(seq % 3 == first.seq % 3 for seq in marked)
    assert {i.key for i in items} == {"c"}
    backlog.stop()
    store.close()
