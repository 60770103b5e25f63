"""MQTT over WebSocket (RFC 6455, MQTT 5 section 6): the HTTP upgrade and a socket-like
stream that `tcp.Connection` reads and writes as it does a TLS socket.

Protocol code comes from sans-I/O libraries, as our MQTT codec does: h11 parses the
upgrade request and writes the 101, wsproto frames and unframes. This module only decides
(which path, origin and subprotocol to accept, how large a message may grow) and moves
bytes between them and the socket.

What a client sees:
- The upgrade is answered with 101 and the subprotocol `mqtt` (or `mqttv3.1` for old
  clients that offer only that); a request that is not an upgrade to this path, offers
  only other subprotocols or comes from an origin not allowed gets a plain HTTP error
  naming the problem, and the socket is closed.
- MQTT bytes travel in binary frames, split or joined anyhow; a text frame, a message
  over `max_message_size` (however many fragments it comes in) or a broken frame ends the
  connection with a Close frame giving the status (1003, 1009, 1002). Pings are answered.
  When the broker ends a connection it sends Close 1000 first; a client's Close is echoed.
"""

from __future__ import annotations

import base64
import logging
import socket
from dataclasses import dataclass

import gevent
import h11
from gevent import get_hub
from gevent.lock import Semaphore
from gevent.ssl import SSLSocket
from greenlet import getcurrent
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import generate_accept_token

log = logging.getLogger(__name__)

SUBPROTOCOLS = ("mqtt", "mqttv3.1")  # in order of preference; MQTT 3.1.1 and 5 name "mqtt"
MAX_REQUEST_SIZE = 16 * 1024  # bytes of upgrade request head; browsers send ~1 KB with cookies
_READ_SIZE = 65536
_CLOSE_TIMEOUT = 1.0  # seconds a Close frame may take to leave; a peer that does not read gets none


# -- the upgrade ---------------------------------------------------------------------------


class Refused(Exception):
    """The upgrade request is refused: answer with `response()` and close the socket."""

    def __init__(self, status: int, problem: str, reason: str, headers: tuple = ()) -> None:
        super().__init__(problem)
        self.status = status
        self.reason = reason  # a short word for metrics: not_websocket, path, origin, ...
        self.headers = headers

    def response(self) -> bytes:
        body = (str(self) + "\n").encode()
        head = [f"HTTP/1.1 {self.status} {_STATUS_TEXT.get(self.status, 'Error')}",
                "Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}",
                "Connection: close", *(f"{name}: {value}" for name, value in self.headers)]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                426: "Upgrade Required", 431: "Request Header Fields Too Large"}


@dataclass(frozen=True)
class Accepted:
    """A completed upgrade: the 101 to send, the subprotocol chosen, and any bytes the
    client sent after its request (frames it did not wait to send)."""

    response: bytes
    subprotocol: str | None
    trailing: bytes


class Handshake:
    """Sans-I/O server side of the upgrade: `feed(bytes)` until it returns `Accepted`
    or raises `Refused`; None means it needs more bytes."""

    def __init__(self, path: str, allowed_origins: tuple[str, ...] = ()) -> None:
        self._path = path
        self._origins = {origin.lower().rstrip("/") for origin in allowed_origins}
        self._http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_SIZE)
        self._request: h11.Request | None = None
        self._received = 0  # bytes fed so far: the request head, and frames sent after it

    def feed(self, data: bytes) -> Accepted | None:
        if not data:
            raise Refused(400, "the connection closed before the upgrade request was complete", "incomplete")
        self._received += len(data)
        if self._received > MAX_REQUEST_SIZE:
            raise Refused(431, f"the upgrade request is over {MAX_REQUEST_SIZE} bytes", "bad_request")
        self._http.receive_data(data)
        while True:
            try:
                event = self._http.next_event()
            except h11.RemoteProtocolError as error:
                status = error.error_status_hint if error.error_status_hint in _STATUS_TEXT else 400
                raise Refused(status, f"not an HTTP request this endpoint can read: {error}", "bad_request") from None
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if event is h11.PAUSED and self._request is not None:
                    return self._accept(self._request)
                return None
            if isinstance(event, h11.Request):
                self._request = event
                self._check(event)
            elif isinstance(event, h11.EndOfMessage):
                return self._accept(self._request)
            else:  # a body (Data) on an upgrade request
                raise Refused(400, "an upgrade request has no body", "bad_request")

    def _check(self, request: h11.Request) -> None:
        headers = {}
        for name, value in request.headers:  # h11 lower-cases names; repeated ones are joined
            headers[name] = headers[name] + b", " + value if name in headers else value
        target = request.target.decode("ascii", "replace")
        path = target.split("?", 1)[0]
        if request.method != b"GET":
            raise Refused(405, f"MQTT over WebSocket needs GET {self._path}, got {request.method.decode()}",
                          "not_websocket", (("Allow", "GET"),))
        if path != self._path:
            raise Refused(404, f"MQTT over WebSocket is served at {self._path}, not {path}", "path")
        upgrade = _tokens(headers.get(b"upgrade", b""))
        connection = _tokens(headers.get(b"connection", b""))
        if "websocket" not in upgrade or "upgrade" not in connection:
            raise Refused(426, f"this is an MQTT over WebSocket endpoint: open ws(s)://<host>{self._path} "
                          "with a WebSocket client", "not_websocket",
                          (("Upgrade", "websocket"), ("Connection", "Upgrade")))
        if headers.get(b"sec-websocket-version", b"").strip() != b"13":
            raise Refused(426, "only WebSocket version 13 (RFC 6455) is spoken here", "version",
                          (("Sec-WebSocket-Version", "13"),))
        key = headers.get(b"sec-websocket-key", b"").strip()
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            valid_key = False
        if not valid_key:
            raise Refused(400, "Sec-WebSocket-Key must be 16 random bytes in base64", "bad_request")
        origin = headers.get(b"origin")
        # Browsers always send Origin; other clients need not, and are not browsers a
        # hostile page could borrow, so only a present Origin is checked.
        if self._origins and origin is not None and origin.decode("latin-1").lower().rstrip("/") not in self._origins:
            raise Refused(403, f"origin {origin.decode('latin-1')} is not in allowed_origins", "origin")
        offered = _tokens(headers.get(b"sec-websocket-protocol", b""))
        if offered and not any(name in offered for name in SUBPROTOCOLS):
            raise Refused(400, f"MQTT over WebSocket needs the subprotocol mqtt (or mqttv3.1), "
                          f"offered: {', '.join(offered)}", "subprotocol")

    def _accept(self, request: h11.Request) -> Accepted:
        headers = dict(request.headers)
        offered = _tokens(headers.get(b"sec-websocket-protocol", b""))
        chosen = next((name for name in SUBPROTOCOLS if name in offered), None)
        response_headers = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                            (b"Sec-WebSocket-Accept", generate_accept_token(headers[b"sec-websocket-key"].strip()))]
        if chosen is not None:
            response_headers.append((b"Sec-WebSocket-Protocol", chosen.encode()))
        response = self._http.send(h11.InformationalResponse(status_code=101, headers=response_headers,
                                                             reason=b"Switching Protocols"))
        return Accepted(response, chosen, self._http.trailing_data[0])


def _tokens(value: bytes) -> list[str]:
    return [token.strip().lower() for token in value.decode("latin-1").split(",") if token.strip()]


def upgrade(sock, path: str, allowed_origins: tuple[str, ...], timeout: float) -> Accepted:
    """Read the upgrade request from `sock` and answer it, within `timeout` seconds;
    raises Refused (after answering it) or OSError (socket.timeout included)."""
    handshake = Handshake(path, allowed_origins)
    with gevent.Timeout(timeout, socket.timeout("no complete upgrade request within connect_timeout")):
        try:
            while True:
                accepted = handshake.feed(sock.recv(4096))
                if accepted is not None:
                    break
        except Refused as refused:
            try:
                sock.sendall(refused.response())
            except OSError:
                pass
            raise
        sock.sendall(accepted.response)
    return accepted


# -- the stream -----------------------------------------------------------------------------


class WebSocketStream:
    """An upgraded socket that carries MQTT bytes, with the socket calls `Connection`
    and the listener make: `recv`, `sendall`, `pending`, `fileno`, `shutdown`, `close`,
    `getsockname` and (wss) `getpeercert`.

    `recv` returns the payload of binary frames; it raises BlockingIOError when the
    socket held only control frames or part of a frame, and returns b"" once the
    WebSocket is closed (by the peer, or by us for a broken rule, after our Close frame).
    Frames go out under one lock: the connection's writer and the reader's Pong or Close
    never interleave their bytes.
    """

    def __init__(self, sock, max_message_size: int, trailing: bytes = b"") -> None:
        self._sock = sock
        tls = isinstance(sock, SSLSocket)
        # Plain TCP: the kernel's non-blocking socket, so a read never waits. TLS: gevent's
        # wrapper, which waits cooperatively for the rest of a record.
        self._raw_recv = None if tls else sock._sock.recv
        self._tls = tls
        self._ws = WsConnection(ConnectionType.SERVER)
        self._max_message_size = max_message_size
        self._message_size = 0  # bytes of the binary message being received so far
        self._inbound = bytearray()  # MQTT bytes decoded and not yet taken by recv
        self._closed = False  # the WebSocket is closed: recv returns b"" once _inbound is empty
        self._close_sent = False
        self._send_lock = Semaphore()
        self.close_code: int | None = None  # the status of the Close frame sent or received first
        if trailing:
            self._receive(trailing)

    # -- reading -----------------------------------------------------------------------------

    def recv(self, size: int) -> bytes:
        reads = 0
        while not self._inbound and not self._closed:
            if self._raw_recv is not None:
                data = self._raw_recv(_READ_SIZE)  # BlockingIOError when the kernel has nothing
            elif reads == 0 or self._sock.pending():  # TLS: read on only what is decrypted already
                data = self._sock.recv(_READ_SIZE)
            else:
                raise BlockingIOError
            reads += 1
            if not data:
                self._closed = True
                break
            self._receive(data)
        inbound = self._inbound
        if len(inbound) <= size:  # the usual case: one copy, no slice
            data = bytes(inbound)
            inbound.clear()
        else:
            data = bytes(inbound[:size])
            del inbound[:size]
        return data

    def pending(self) -> int:
        """Bytes held above the kernel, which no io watcher sees: decoded MQTT bytes and,
        for wss, decrypted bytes."""
        return len(self._inbound) + (self._sock.pending() if self._tls else 0)

    def _receive(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, BytesMessage):
                self._message_size += len(event.data)
                if self._message_size > self._max_message_size:
                    self._fail(CloseReason.MESSAGE_TOO_BIG,
                               f"a message over max_message_size ({self._max_message_size} bytes)")
                    return
                self._inbound += event.data
                if event.message_finished:
                    self._message_size = 0
            elif isinstance(event, TextMessage):
                self._fail(CloseReason.UNSUPPORTED_DATA, "MQTT travels in binary frames, not text")
                return
            elif isinstance(event, Ping):
                self._send(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                # The peer's Close (echoed, as RFC 6455 asks), or a frame wsproto could
                # not parse (answered with the status it names, 1002 mostly).
                if ws.state is ConnectionState.OPEN:
                    log.info("closing WebSocket of %s with %d: %s", _peer(self._sock), event.code, event.reason)
                self._send_close(event.code or CloseReason.NORMAL_CLOSURE)
                self._closed = True
                return

    def _fail(self, code: int, why: str) -> None:
        log.info("closing WebSocket of %s with %d: %s", _peer(self._sock), code, why)
        self._send_close(code, why)
        self._closed = True

    # -- writing -----------------------------------------------------------------------------

    def sendall(self, data: bytes) -> None:
        if self._ws.state is not ConnectionState.OPEN:
            return  # the WebSocket is closing: MQTT bytes can no longer be framed
        self._send(self._ws.send(Message(data=data)))

    def _send(self, frame: bytes, timeout: float | None = None) -> None:
        with gevent.Timeout(timeout, False), self._send_lock:
            self._sock.sendall(frame)

    def _send_close(self, code: int, reason: str | None = None) -> None:
        """Send a Close frame once, giving a peer that does not read _CLOSE_TIMEOUT."""
        if self._close_sent or self._ws.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return
        self._close_sent = True
        if self.close_code is None:
            self.close_code = code
        try:
            self._send(self._ws.send(CloseConnection(code=code, reason=reason)), _CLOSE_TIMEOUT)
        except OSError:
            pass

    # -- the socket calls that end it ---------------------------------------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    def getsockname(self):
        return self._sock.getsockname()

    def getpeercert(self):
        return self._sock.getpeercert()

    def shutdown(self, how: int) -> None:
        """Say Close 1000, then shut the socket down (which wakes the reader with EOF).
        Called from loop callbacks and timers too, which must not wait: the Close frame
        goes out only if the socket takes it at once and no frame is half sent."""
        if getcurrent() is get_hub():
            if self._send_lock.locked():  # a frame is going out: Close and shut down after it
                gevent.spawn(self._close_and_shut_down, how)
                return
            if self._ws.state is ConnectionState.OPEN:
                self._close_sent = True
                self.close_code = self.close_code or CloseReason.NORMAL_CLOSURE
                frame = self._ws.send(CloseConnection(code=CloseReason.NORMAL_CLOSURE))
                self._sock.settimeout(0.0)  # gevent's send then raises instead of waiting
                try:
                    self._sock.send(frame)
                except OSError:
                    pass
                finally:
                    self._sock.settimeout(None)
            self._shut_down_socket(how)
        else:
            self._close_and_shut_down(how)

    def _close_and_shut_down(self, how: int) -> None:
        self._send_close(CloseReason.NORMAL_CLOSURE)
        self._shut_down_socket(how)

    def _shut_down_socket(self, how: int) -> None:
        try:
            self._sock.shutdown(how)
        except OSError:
            pass

    def close(self) -> None:
        self._send_close(CloseReason.NORMAL_CLOSURE)
        self._sock.close()


def _peer(sock) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "a closed socket"
    return f"{host}:{port}"
