"""Where accepted events wait until they are settled (delivered, or given up and counted).

Without a spool: the memory queue, bounded by `max_len`; when it is full the oldest waiting
event makes room and is counted as dropped.

With a spool: every event is also written to disk when accepted (group commit, see
appliance/store), so the stage can tell the broker when it is durable, and deleted when it is
settled. Memory holds at most `max_len` of them; beyond that events stay on disk only
("spilled") until the workers catch up, and from the first spilled event on every new one is
spilled too, so memory never overtakes the disk and each key keeps its order. The replay
greenlet brings spilled events back, oldest first, from the cursor `replay_after`. After a
restart, everything in the spool is spilled.
"""

from __future__ import annotations

import logging

import gevent
from gevent.event import Event

from .events import QueuedEvent
from .keyed_queue import KeyedQueue
from .spool import Spool

log = logging.getLogger("appliance.webhook")

REPLAY_BATCH = 1000  # events read back from the spool at a time
# Events of the key being POSTed marked ahead of their turn: their marks are durable by the
# time they go (an fsync takes a few POSTs' time), so a worker rarely waits for one.
KEY_AHEAD = 8
# With the store failing (a full disk), at most this many events wait for it in memory; more
# are refused and counted rather than held without a bound.
UNWRITTEN_MAX = 10_000


class Backlog:
    def __init__(self, max_len: int, spool: Spool | None) -> None:
        self.max_len = max_len
        self.memory = KeyedQueue()
        self.spool = spool
        self.spilled = spool.rows_at_start if spool else 0  # on disk only, not in memory
        self.replay_after = 0  # every spilled event has a larger seq
        self._room = Event()  # memory has room for a replay batch, or spilled events wait
        self._replayer = None

    def start(self) -> None:
        if self.spool is not None:
            self._replayer = gevent.spawn(self._replay_loop)
            self._room.set()

    def stop(self) -> None:
        if self._replayer is not None:
            self._replayer.kill()

    @property
    def depth(self) -> int:
        """Events waiting in memory (in flight ones excluded)."""
        return self.memory.depth

    def put(self, item: QueuedEvent) -> tuple[QueuedEvent | None, str | None]:
        """Accept an event. Returns (an event that made room, or None; why the new event was
        refused, or None)."""
        spool = self.spool
        if spool is None:
            evicted = self.memory.drop_oldest() if self.memory.depth >= self.max_len else None
            self.memory.put(item)
            return evicted, None
        if spool.store.failing and spool.store.pending >= UNWRITTEN_MAX:
            return None, "spool_error"
        spool.insert(item)
        if self.spilled or self.memory.depth >= self.max_len:
            if not self.spilled:
                self.replay_after = item.seq - 1
                log.info("webhook: memory queue full (%d); new events wait in the spool %s until the "
                         "workers catch up", self.max_len, spool.store.path)
            self.spilled += 1
            self._room.set()
            return None, None
        self.memory.put(item)
        return None, None

    def take(self, settled: QueuedEvent | None = None) -> QueuedEvent:
        """The next event to POST (its key has nothing else in flight); blocks the worker.
        `settled`: the worker's previous event, settled first (see `settle`)."""
        if settled is None:
            return self.memory.take()
        self._leave_spool(settled)
        if settled.spooled:
            settled.mark = self.spool.store.generation()  # the commit that holds its removal
        return self.memory.take(settled)

    def mark_attempted(self, item: QueuedEvent, ahead: int) -> bool:
        """`item` is about to be POSTed: mark it on disk as possibly sent, so a crash from then
        on counts its next POST as redelivered; mark the events that come next too (KEY_AHEAD
        of its key, `ahead` of others), so their marks are usually durable by the time a
        worker takes them: no commit latency added to a POST. After a crash, at most
        `ahead` + KEY_AHEAD x pool_size marked events never sent are counted as redelivered
        beside the real duplicates. Returns whether `item`'s mark is durable now."""
        spool = self.spool
        if spool is None or item.attempted:
            return True
        for event in (item, *self.memory.next_up(ahead, item.key, KEY_AHEAD)):
            if not event.mark and not event.attempted:
                spool.attempted(event)
                event.mark = spool.store.generation()
        return spool.store.committed(item.mark)

    def settle(self, item: QueuedEvent) -> None:
        """`item` is delivered or given up: its key may go on, and it leaves the spool."""
        self.memory.done(item)
        self._leave_spool(item)

    def _leave_spool(self, item: QueuedEvent) -> None:
        if item.spooled:
            self.spool.delete(item)
        if self.spilled:
            self._room.set()

    def forget(self, item: QueuedEvent) -> None:
        """`item` was evicted or refused (counted by the caller): gone from memory and disk."""
        if item.spooled:
            self.spool.delete(item)

    def longest_key(self) -> tuple[int, QueuedEvent | None]:
        return self.memory.longest()

    def when_durable(self, callback) -> None:
        if self.spool is None:
            callback()
        else:
            self.spool.store.when_durable(callback)

    def mark(self) -> int:
        return 0 if self.spool is None else self.spool.store.generation()

    def drain(self) -> list[QueuedEvent]:
        return self.memory.drain()

    def _replay_room(self) -> int:
        return max(1, self.max_len // 2) - self.memory.depth

    def _replay_loop(self) -> None:
        while True:
            self._room.wait()
            self._room.clear()
            while self.spilled and self._replay_room() > 0:
                self.spool.store.wait_durable()  # every spilled event is readable now
                items = self.spool.read_after(self.replay_after, min(self._replay_room(), REPLAY_BATCH))
                if not items:
                    raise RuntimeError(f"webhook spool: {self.spilled} spilled event(s) expected after "
                                       f"seq {self.replay_after}, none on disk")
                for item in items:
                    self.memory.put(item)
                self.replay_after = items[-1].seq
                self.spilled -= len(items)
                if not self.spilled:
                    log.info("webhook: spool replayed; new events go to memory again")
                gevent.sleep(0)  # let the workers start on them
