"""What the broker tells a persistence journal, at the points where durable state changes.

The broker and its sessions call a `Journal` only when one is configured: the broker holds
None otherwise, and a session only gets one when it outlives its connection (an expiry
interval above 0), so QoS 0, clean sessions and a broker without persistence pay one
`is None` test at most. A journal only records (queues rows for the store's next group
commit); it never blocks and never changes broker state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .message import Message
    from .session import Delivery, LastWill, Session, SubscriptionOptions


class Journal(Protocol):
    # -- retained messages (every one, whoever publishes it) --
    def retained(self, message: Message) -> None:
        """The topic's retained message is now `message` (cleared when its payload is empty)."""

    # -- persistent sessions --
    def session_attached(self, session: Session, username: str | None) -> None:
        """A connection holds the session now (its expiry and will as of this CONNECT)."""

    def session_detached(self, session: Session, will: LastWill | None, will_delay: float) -> None:
        """The connection went; `will` waits `will_delay` seconds (None: no will pending)."""

    def session_ended(self, session: Session) -> None:
        """The session is gone, with its subscriptions, queue and QoS state."""

    def subscribed(self, session: Session, topic_filter: str, options: SubscriptionOptions) -> None: ...

    def unsubscribed(self, session: Session, topic_filter: str) -> None: ...

    # -- outgoing QoS 1/2 of a persistent session --
    def queued(self, session: Session, delivery: Delivery) -> None:
        """A QoS 1/2 message entered the session (pending, or about to go in flight)."""

    def sent(self, session: Session, packet_id: int, delivery: Delivery) -> None:
        """`delivery` is in flight with `packet_id` (or, QoS 2, PUBREC came: `delivery.released`)."""

    def done(self, session: Session, delivery: Delivery) -> None:
        """`delivery` left the session: acknowledged, expired, dropped."""

    # -- incoming QoS 2 --
    def incoming(self, session: Session, packet_id: int) -> None:
        """A QoS 2 PUBLISH with `packet_id` was routed; its PUBREL has not come yet."""

    def incoming_released(self, session: Session, packet_id: int) -> None: ...
