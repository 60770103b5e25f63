"""Greenlets that run short jobs (a connection's read burst, an accepted socket's handler)
and are kept parked between jobs instead of ending.

Starting a greenlet costs about 15 us here (its Python frame stack is allocated and freed
with it); switching into a parked one about 1 us. A connection starts a job every time
bytes arrive, so this is per-read overhead. Only as many workers stay parked as were
busy at once, up to `keep`, so idle connections still cost no greenlet each.
"""

from __future__ import annotations

import logging

from gevent import get_hub
from greenlet import getcurrent, greenlet

log = logging.getLogger(__name__)


class Workers:
    def __init__(self, keep: int = 64) -> None:
        self._keep = keep
        self._idle: list[greenlet] = []

    def run(self, function, *args) -> None:
        """Run `function(*args)` in a worker greenlet; returns once it blocks or ends."""
        hub = get_hub()
        worker = self._idle.pop() if self._idle else greenlet(self._serve, parent=hub)
        if getcurrent() is hub:  # io and accept callbacks: straight in, as gevent's waits do
            worker.switch(function, args)
        else:  # a switch from another greenlet would leave it never resumed
            hub.loop.run_callback(worker.switch, function, args)

    def _serve(self, function, args) -> None:
        hub = get_hub()
        while True:
            try:
                function(*args)
            except Exception:  # noqa: BLE001 - one job's bug must not end the others' worker
                log.exception("%s failed", getattr(function, "__qualname__", function))
            if len(self._idle) >= self._keep:
                return  # back to the hub, its parent
            self._idle.append(getcurrent())
            function, args = hub.switch()  # parked until run() hands it the next job
