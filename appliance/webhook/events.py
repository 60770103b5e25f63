"""One accepted event, as every part of the stage sees it."""

from __future__ import annotations


class QueuedEvent:
    """An event waiting for delivery. `seq` orders all events ever accepted (it is the spool's
    key too); `key` is its ordering key (None: no order kept); `spooled` says a copy is on
    disk, deleted once the event is settled; `attempted` that it was read from the spool marked
    as possibly POSTed before a crash; `mark` the store commit that holds this run's mark
    (0: not marked), and once it is settled the commit that holds its removal."""

    __slots__ = ("seq", "key", "client_id", "topic", "event", "body", "spooled", "attempted", "mark")

    def __init__(self, seq: int, key: str | None, client_id: str, topic: str | None, event: str, body: bytes,
                 spooled: bool = False, attempted: bool = False) -> None:
        self.seq = seq
        self.key = key
        self.client_id = client_id
        self.topic = topic
        self.event = event  # the body's action: "client_connack", "message_publish", ...
        self.body = body
        self.spooled = spooled
        self.attempted = attempted
        self.mark = 0


ORDER_SCOPES = ("client", "topic", "none")


def ordering_key(order: str):
    """`(client_id, topic) -> key` for `webhook.order`: events with equal keys are POSTed one
    at a time in the order accepted; None means any worker may take the event at any time."""
    if order == "client":
        return lambda client_id, topic: client_id
    if order == "topic":
        return lambda client_id, topic: client_id if topic is None else topic
    if order == "none":
        return lambda client_id, topic: None
    raise ValueError(f"order must be one of {ORDER_SCOPES}, not {order!r}")
