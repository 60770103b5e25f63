"""The bounded memory queue: one FIFO per ordering key, and any free worker takes the next key
that has events and none in flight. So a key's events are POSTed one at a time in order, and
the pool is shared by every key that has work (one busy client does not wait for a worker
chosen by hash, nor keep the others waiting)."""

from __future__ import annotations

from collections import deque

from gevent.event import Event

from .events import QueuedEvent


class KeyedQueue:
    def __init__(self) -> None:
        self.depth = 0  # events waiting (not in flight)
        self._fifos: dict[str, deque[QueuedEvent]] = {}  # keys with events waiting or in flight
        self._ready: deque[str] = deque()  # keys with events waiting and none in flight
        self._busy: set[str] = set()  # keys with an event in flight
        self._unordered: deque[QueuedEvent] = deque()  # key None: anyone, any time
        self._idle: deque[Event] = deque()  # workers waiting for work

    def put(self, item: QueuedEvent) -> None:
        self.depth += 1
        key = item.key
        if key is None:
            self._unordered.append(item)
            self._wake_one()
            return
        fifo = self._fifos.get(key)
        if fifo is None:
            fifo = self._fifos[key] = deque()
        fifo.append(item)
        if len(fifo) == 1 and key not in self._busy:
            self._ready.append(key)
            self._wake_one()

    def take(self, settled: QueuedEvent | None = None) -> QueuedEvent:
        """The next event whose key has nothing in flight, waiting (cooperatively) for one.
        The caller owns it until `done(item)`, or until it passes it back here as `settled`:
        then no other worker is woken for that key's next event, because the caller takes
        the next ready key itself (a worker woken for nothing costs two greenlet switches)."""
        if settled is not None and self._release(settled) and self._unordered:
            self._wake_one()  # the caller takes an unordered event first: someone else gets the key
        while True:
            if self._unordered:
                self.depth -= 1
                return self._unordered.popleft()
            while self._ready:
                key = self._ready.popleft()
                fifo = self._fifos.get(key)
                if fifo:  # (emptied meanwhile by drop_oldest)
                    self._busy.add(key)
                    self.depth -= 1
                    return fifo.popleft()
                self._fifos.pop(key, None)
            idle = Event()
            self._idle.append(idle)
            idle.wait()

    def next_up(self, limit: int, key: str | None = None, of_key: int = 0):
        """Up to `of_key` waiting events of `key` (they go one after the other as soon as the
        one in flight is done), then up to `limit` that `take()` would hand out next (roughly)."""
        fifo = self._fifos.get(key) if key is not None else None
        if fifo:
            for index in range(min(of_key, len(fifo))):
                yield fifo[index]
        for item in self._unordered:
            if limit <= 0:
                return
            limit -= 1
            yield item
        for key in self._ready:
            if limit <= 0:
                return
            fifo = self._fifos.get(key)
            if fifo:
                limit -= 1
                yield fifo[0]

    def done(self, item: QueuedEvent) -> None:
        """The event is settled: its key's next event may go."""
        if self._release(item):
            self._wake_one()

    def _release(self, item: QueuedEvent) -> bool:
        """Let `item`'s key go on; returns whether that made it ready (it has events waiting)."""
        key = item.key
        if key is None:
            return False
        self._busy.discard(key)
        if self._fifos.get(key):
            self._ready.append(key)
            return True
        self._fifos.pop(key, None)
        return False

    def drop_oldest(self) -> QueuedEvent | None:
        """Remove and return a waiting event to make room: the first of the key that has had
        events waiting longest (or the oldest unordered one)."""
        first = next((fifo[0] for fifo in self._fifos.values() if fifo), None)
        if self._unordered and (first is None or self._unordered[0].seq < first.seq):
            self.depth -= 1
            return self._unordered.popleft()
        if first is None:
            return None
        self.depth -= 1
        return self._fifos[first.key].popleft()

    def longest(self) -> tuple[int, QueuedEvent | None]:
        """The longest backlog of one key (in-flight event included) and its first waiting event."""
        best, head = 0, None
        for key, fifo in self._fifos.items():
            length = len(fifo) + (key in self._busy)
            if length > best and fifo:
                best, head = length, fifo[0]
        if not best and self._busy:
            best = 1
        return best, head

    def drain(self) -> list[QueuedEvent]:
        """Take everything still waiting, in acceptance order."""
        items = [*self._unordered, *(item for fifo in self._fifos.values() for item in fifo)]
        items.sort(key=lambda item: item.seq)
        self._unordered.clear()
        for fifo in self._fifos.values():
            fifo.clear()
        self._ready.clear()
        self.depth = 0
        return items

    def _wake_one(self) -> None:
        if self._idle:
            self._idle.popleft().set()
