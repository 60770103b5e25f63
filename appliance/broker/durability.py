"""The durability barrier: acknowledgements that wait until every `Durable` confirms.

With no `Durable` registered there is no barrier at all (connections get None and send
PUBACK/PUBREC at once, the hot path untouched). With some, a connection asks the barrier
when it routed a QoS 1/2 PUBLISH and sends the acknowledgement from the callback, keeping
its acknowledgements in publish order (`Client._acks_waiting`); the PUBLISHes it routes
until the next group commit starts share that one callback (`mark()` is unchanged).
"""

from __future__ import annotations

from typing import Callable, Hashable, Sequence

from .hooks import Durable


class Barrier:
    def __init__(self, durables: Sequence[Durable]) -> None:
        if not durables:
            raise ValueError("a barrier needs at least one Durable; use None for none")
        self._durables = tuple(durables)
        if len(self._durables) == 1:
            self.mark = self._durables[0].mark

    def mark(self) -> Hashable:
        """Equal marks: no change recorded in between that an earlier `when_durable` misses."""
        return tuple(durable.mark() for durable in self._durables)

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every Durable has made what was recorded so far durable."""
        durables = self._durables
        if len(durables) == 1:
            durables[0].when_durable(callback)
            return
        remaining = [len(durables)]

        def one_done() -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                callback()

        for durable in durables:
            durable.when_durable(one_done)


def barrier(durables: Sequence[Durable]) -> Barrier | None:
    """The barrier over `durables`, or None (no overhead) when there are none."""
    return Barrier(durables) if durables else None
