"""The broker's extension points: what it tells the outside world, and when.

The broker calls every registered `BrokerHooks` on the connection's greenlet, so a hook
must only record or enqueue, never block or do I/O (the webhook stage enqueues; the
metrics count). Exceptions from hooks are logged and swallowed by the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Hashable, Protocol

from .message import Message

if TYPE_CHECKING:
    from ..mqtt.packets import Subscription

# Reasons for on_client_disconnected, as NanoMQ/EMQX name them in webhook bodies.
NORMAL = "normal"  # the client sent DISCONNECT
TCP_CLOSED = "tcp_closed"  # the socket closed (or errored) without a DISCONNECT
KEEPALIVE_TIMEOUT = "keepalive_timeout"
TAKEN_OVER = "takenover"  # another connection took over this client id
PROTOCOL_ERROR = "protocol_error"
MALFORMED_PACKET = "malformed_packet"
PACKET_TOO_LARGE = "packet_too_large"
SERVER_SHUTDOWN = "server_shutdown"
CONNACK_REFUSED = "connack_refused"  # the CONNECT was refused; follows a failed connack
NOT_AUTHORIZED = "not_authorized"  # deny_action = disconnect
KICKED = "kicked"  # an operator's DELETE /api/v4/clients/{clientid}

# Reasons for on_session_terminated beyond the disconnect reasons above (EMQX's names).
EXPIRED = "expired"  # the session outlived its expiry interval offline
DISCARDED = "discarded"  # a clean-start CONNECT for the same client id replaced it

# Reasons for on_message_dropped.
NO_SUBSCRIBERS = "no_subscribers"  # routed to no session


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who a client is, as seen at CONNECT."""

    client_id: str
    username: str | None
    protocol_version: int  # 3, 4 or 5
    keepalive: int  # seconds, as the client asked
    peer: tuple  # (host, port) of the remote end


class BrokerHooks:
    """Base class with no-op hooks; subclasses override what they need."""

    def on_client_connack(self, client: ClientInfo, reason_code: int) -> None:
        """CONNACK is about to be sent; `reason_code` is the MQTT 5 code (0 = success),
        whatever version the client speaks."""

    def on_client_disconnected(self, client: ClientInfo, reason: str) -> None:
        """The connection is closing (after a refused CONNACK too); `reason` is one of the
        constants above."""

    def on_message_publish(self, client: ClientInfo | None, message: Message) -> None:
        """A message is about to be routed: PUBLISH from a client, or a will message
        (`client` is the dead client's info). Not called for retained deliveries."""

    # EMQX's further hook points. The broker asks `wants(event)` once, when the hooks are
    # added (and at `Broker.hooks_changed()`): an event no hook wants costs nothing, and
    # on_message_delivered / acked / dropped are not even looked up per message.

    def wants(self, event: str) -> bool:
        """Whether this hook wants `event` (a method name, e.g. "on_message_delivered"). By
        default: whether the subclass overrides that method."""
        return getattr(type(self), event, None) is not getattr(BrokerHooks, event, None)

    def on_client_connect(self, client: ClientInfo) -> None:
        """A CONNECT arrived (before authentication and the client id checks)."""

    def on_client_connected(self, client: ClientInfo) -> None:
        """CONNACK success was sent: the client is connected."""

    def on_client_subscribe(self, client: ClientInfo, subscription: Subscription) -> None:
        """A SUBSCRIBE's filter passed the checks and the ACL and is about to be subscribed."""

    def on_session_subscribed(self, client: ClientInfo, subscription: Subscription, is_new: bool) -> None:
        """The session now has the subscription (`is_new`: it did not have this filter before)."""

    def on_client_unsubscribe(self, client: ClientInfo, topic_filter: str) -> None:
        """An UNSUBSCRIBE names `topic_filter` (whether or not the session has it)."""

    def on_session_unsubscribed(self, client: ClientInfo, topic_filter: str) -> None:
        """The session had `topic_filter` and no longer has it."""

    def on_session_terminated(self, client: ClientInfo, reason: str) -> None:
        """The session ended: with its connection (`reason` as for on_client_disconnected),
        or offline (EXPIRED, DISCARDED, KICKED)."""

    def on_message_delivered(self, client: ClientInfo, message: Message, qos: int, retain: bool) -> None:
        """A PUBLISH of `message` was queued to subscriber `client` (at `qos`, with `retain`
        as sent); not for resends of a message in flight."""

    def on_message_acked(self, client: ClientInfo, message: Message, qos: int, retain: bool) -> None:
        """Subscriber `client` acknowledged `message`: PUBACK (QoS 1), PUBCOMP (QoS 2), or a
        refusing v5 PUBREC (the exchange ends there)."""

    def on_message_dropped(self, client: ClientInfo | None, message: Message, reason: str) -> None:
        """A routed message reached no session (`reason` NO_SUBSCRIBERS); `client` is the publisher."""


class Durable(Protocol):
    """A part that records changes and can say when they are safe (the webhook spool, the
    persistence store). app.py gives the broker's connections the list of them; a QoS 1/2
    PUBLISH is acknowledged only once every one has made it durable."""

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the gevent loop / a greenlet, never a foreign thread) once every
        change recorded before this call is durable. May call it at once when nothing is pending."""

    def mark(self) -> Hashable:
        """Where the changes recorded so far stand: equal marks at two moments mean nothing
        was recorded in between that a `when_durable` call at the first would not cover (so a
        connection can send many acknowledgements from one callback)."""
