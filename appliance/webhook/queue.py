"""The bounded in-memory queue: one FIFO per delivery worker, chosen by client id, so the
events of one client are POSTed in the order they happened whatever the pool size."""

from __future__ import annotations

from collections import deque

from gevent.event import Event


class QueuedEvent:
    """One event waiting for delivery. `seq` orders all events ever accepted (it is the spool's
    key too); `spooled` says a copy is on disk, to be deleted once the event is settled."""

    __slots__ = ("seq", "key", "event", "body", "spooled")

    def __init__(self, seq: int, key: str, event: str, body: bytes, spooled: bool = False) -> None:
        self.seq = seq
        self.key = key  # the client id: events with the same key keep their order
        self.event = event  # "client_connack", "client_disconnected", "message_publish"
        self.body = body
        self.spooled = spooled


class EventQueue:
    """`partitions` FIFOs holding at most `max_len` events between them."""

    def __init__(self, partitions: int, max_len: int) -> None:
        self.max_len = max_len
        self.depth = 0
        self._fifos = [deque() for _ in range(partitions)]
        self._ready = [Event() for _ in range(partitions)]

    @property
    def full(self) -> bool:
        return self.depth >= self.max_len

    def put(self, item: QueuedEvent) -> None:
        index = hash(item.key) % len(self._fifos)
        self._fifos[index].append(item)
        self.depth += 1
        self._ready[index].set()

    def get(self, index: int) -> QueuedEvent:
        """The next event of one partition, waiting (cooperatively) until there is one."""
        fifo, ready = self._fifos[index], self._ready[index]
        while not fifo:
            ready.clear()
            ready.wait()
        self.depth -= 1
        return fifo.popleft()

    def drop_oldest(self) -> QueuedEvent:
        """Remove and return the event accepted first, across all partitions."""
        oldest = min((fifo for fifo in self._fifos if fifo), key=lambda fifo: fifo[0].seq)
        self.depth -= 1
        return oldest.popleft()

    def drain(self) -> list[QueuedEvent]:
        """Take everything still queued, in acceptance order."""
        items = sorted((item for fifo in self._fifos for item in fifo), key=lambda item: item.seq)
        for fifo in self._fifos:
            fifo.clear()
        self.depth = 0
        return items
