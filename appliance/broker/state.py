"""The state of one MQTT connection. Everything that affects it lives in this file.

A connection is in exactly one `State`. It moves only by an `Event`, and only along an
edge of `TRANSITIONS`; an edge the table does not have is a bug of ours
(`LocalProtocolError`), never a client's fault. `INBOUND` says what each state does with
a packet the client sends: handle it, hold it until a pending verdict is known, or drop
it (counted, never routed).

    CONNECTING --CONNECT--> AUTHENTICATING --ACCEPTED--> CONNECTED
        |                        |                           |
        |                     REFUSED                   TAKEN_OVER
        |                        v                           v
        +-----CLOSE-----------> CLOSING <---------CLOSE------+
                                 |
                        TRANSPORT_CLOSED (from any state)
                                 v
                               CLOSED

AUTHENTICATING lasts while the I/O shell asks the authenticator (a password file, an
HTTP service) and ends when it hands the verdict back; packets a client pipelines behind
its CONNECT wait meanwhile. After CLOSING (a DISCONNECT, a protocol error, a refusal, a
takeover, shutdown) the connection only flushes what it queued: whatever the peer still
sends is dropped.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class State(IntEnum):
    CONNECTING = 0  # socket open, no CONNECT yet
    AUTHENTICATING = 1  # CONNECT received, waiting for the verdict of access control
    CONNECTED = 2  # CONNACK success sent; the connection holds its session
    CLOSING = 3  # going away: flushing the last packets, reading only to drop
    CLOSED = 4  # the transport is gone


class Event(Enum):
    CONNECT = "connect"  # a CONNECT packet arrived
    ACCEPTED = "accepted"  # the verdict allows the client; CONNACK success
    REFUSED = "refused"  # the verdict refuses it; CONNACK with an error code
    TAKEN_OVER = "taken_over"  # another connection claimed the client id
    CLOSE = "close"  # we end the connection: DISCONNECT, protocol error, keepalive, shutdown
    TRANSPORT_CLOSED = "transport_closed"  # the socket is gone


_S, _E = State, Event
TRANSITIONS: dict[tuple[State, Event], State] = {
    (_S.CONNECTING, _E.CONNECT): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, _E.ACCEPTED): _S.CONNECTED,
    (_S.AUTHENTICATING, _E.REFUSED): _S.CLOSING,
    (_S.CONNECTED, _E.TAKEN_OVER): _S.CLOSING,
    (_S.CONNECTING, _E.CLOSE): _S.CLOSING,
    (_S.AUTHENTICATING, _E.CLOSE): _S.CLOSING,
    (_S.CONNECTED, _E.CLOSE): _S.CLOSING,
    (_S.CONNECTING, _E.TRANSPORT_CLOSED): _S.CLOSED,
    (_S.AUTHENTICATING, _E.TRANSPORT_CLOSED): _S.CLOSED,
    (_S.CONNECTED, _E.TRANSPORT_CLOSED): _S.CLOSED,
    (_S.CLOSING, _E.TRANSPORT_CLOSED): _S.CLOSED,
}

# What a state does with an inbound packet.
HANDLE = "handle"  # CONNECTING: only a CONNECT gets here (the decoder refuses anything else first)
HOLD = "hold"  # kept in order until the verdict is in, then handled
DROP = "drop"  # counted in stats.packets_dropped_closing, never routed
INBOUND: dict[State, str] = {
    _S.CONNECTING: HANDLE,
    _S.AUTHENTICATING: HOLD,
    _S.CONNECTED: HANDLE,
    _S.CLOSING: DROP,
    _S.CLOSED: DROP,
}


class LocalProtocolError(RuntimeError):
    """An event the table does not allow in the current state: our bug, not the peer's."""


class ConnectionState:
    """The state of one connection; `process(event)` is the only way to change it."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = State.CONNECTING

    def process(self, event: Event) -> State:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise LocalProtocolError(f"{event.value} not allowed in {self.state.name}")
        self.state = new
        return new

    @property
    def open(self) -> bool:
        """Still talking with the peer (not CLOSING or CLOSED)."""
        return self.state < State.CLOSING
