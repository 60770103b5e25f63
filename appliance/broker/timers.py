"""Every deadline of the broker in one structure, swept from one greenlet.

Session expiry, will delay, the retry of unacknowledged messages and the CONNECT and
keepalive deadlines of connections are entries of one heap; a single sweeper greenlet
wakes every `resolution` seconds and runs what is due (as mosquitto sweeps its sorted
will-delay and session-expiry lists from its loop). So a session or a connection costs
a heap entry, never a greenlet or a libev timer of its own, and a deadline fires at most
`resolution` late, never early.

A keepalive moves on every packet; rather than touch the heap per read, its entry fires
at the old deadline and the owner re-arms it from the time it last heard from the peer.
Callbacks run on the sweeper greenlet and must not block for long.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time

import gevent

log = logging.getLogger(__name__)

RESOLUTION = 0.25  # seconds between sweeps


class Timer:
    """One scheduled call; `cancel()` makes it a no-op (it leaves the heap when due)."""

    __slots__ = ("when", "callback", "args", "cancelled", "_owner")

    def __init__(self, owner: Timers, when: float, callback, args: tuple) -> None:
        self._owner = owner
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._owner._cancelled += 1


class Timers:
    """A heap of `Timer`s on the time.monotonic() clock."""

    def __init__(self, resolution: float = RESOLUTION) -> None:
        self.resolution = resolution
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()  # equal deadlines run in the order they were set
        self._cancelled = 0
        self._sweeper = None
        self.now = time.monotonic()  # the clock of the sweep running (or last run): "now" for callbacks

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled

    def call_later(self, delay: float, callback, *args) -> Timer:
        return self.call_at(time.monotonic() + delay, callback, *args)

    def call_at(self, when: float, callback, *args) -> Timer:
        timer = Timer(self, when, callback, args)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        return timer

    def sweep(self, now: float | None = None) -> int:
        """Run every timer due by `now`; returns how many ran. Timers set by those calls
        wait for the next sweep, even if already due (a repeating timer cannot spin)."""
        now = self.now = time.monotonic() if now is None else now
        heap = self._heap
        due = []
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if timer.cancelled:
                self._cancelled -= 1
            else:
                timer.cancelled = True  # done: a late cancel() changes nothing
                due.append(timer)
        for timer in due:
            try:
                timer.callback(*timer.args)
            except Exception:  # noqa: BLE001 - one deadline's bug must not stop the others
                log.exception("timer %s failed", getattr(timer.callback, "__qualname__", timer.callback))
        if self._cancelled > 1024 and self._cancelled > len(self._heap) // 2:
            # Cancelled entries far in the future (session expiry, cancelled by a reconnect)
            # would pile up: rebuild without them.
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0
        return len(due)

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = gevent.spawn(self._sweep_forever)

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.kill(block=False)
            self._sweeper = None

    def _sweep_forever(self) -> None:
        while True:
            gevent.sleep(self.resolution)
            self.sweep()
