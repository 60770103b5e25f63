"""The broker's extension points: what it tells the outside world, and when.

The broker calls every registered `BrokerHooks` on the connection's greenlet, so a hook
must only record or enqueue, never block or do I/O (the webhook stage enqueues; the
metrics count). Exceptions from hooks are logged and swallowed by the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from .message import Message

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


class Durable(Protocol):
    """A part that records changes and can say when they are safe (the webhook spool, the
    persistence store). app.py gives the broker's connections the list of them; a QoS 1/2
    PUBLISH is acknowledged only once every one has made it durable."""

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the gevent loop / a greenlet, never a foreign thread) once every
        change recorded before this call is durable. May call it at once when nothing is pending."""
