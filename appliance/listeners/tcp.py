"""MQTT over TCP: a gevent StreamServer per listener and the I/O of each connection.

Only I/O lives here. A quiet connection costs no greenlet: when bytes arrive, an io
watcher on its socket hands the connection to a worker greenlet (`workers.py`), which
feeds them to the codec, hands the packets to the `Client` and goes back to wait for the
next job. Writes are queued and flushed once per turn of the event loop, so a burst of
small packets costs one system call.
"""

from __future__ import annotations

import logging
import socket
import time

import gevent
from gevent import get_hub
from gevent.server import StreamServer

from ..broker import hooks as reasons
from ..broker.client import Client
from ..config.model import ListenerConfig
from ..mqtt.codec import MqttDecoder
from ..mqtt.errors import MqttError
from . import tls
from .admission import Admission
from .workers import Workers

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_SWEEP_INTERVAL = 0.5  # seconds between keepalive/CONNECT deadline checks
_FLUSH_TIMEOUT = 2.0  # seconds a closing connection may take to send what it has queued

_workers = Workers()  # run read bursts and accepted sockets' handlers, for every listener


class Connection:
    """One accepted socket: the transport of a `Client` (`write`, `close`, `pending_bytes`).

    Reading: while the peer is quiet the connection is just an io watcher. A greenlet
    parked in `recv` would keep its stack, several KB that 10,000 idle clients all pay
    for; instead, when the socket turns readable a worker greenlet reads what is there,
    handles the packets (which may block, e.g. on an HTTP auth server) and re-arms the
    watcher.

    Writing: queued and flushed once per turn of the event loop, from a loop callback:
    everything the broker queued for this socket in that turn (a burst of fan-out, an ack
    and the messages it released) goes out in one non-blocking `send`, with no greenlet
    switch. Only when the kernel's buffer is full (a slow reader) or the socket is TLS does
    a writer greenlet take over with `sendall`, until the queue is empty again; so there
    is never more than one writer.
    """

    __slots__ = ("sock", "address", "broker", "cert_username", "facts", "client", "pending_bytes",
                 "created", "last_read", "_on_closed", "_readable", "_decoder", "_raw_recv", "_chunks",
                 "_raw_send", "_flush_scheduled", "_writer", "_give_up", "_closing", "_done")

    def __init__(self, sock, address, broker, on_closed, cert_username: str | None = None,
                 facts: dict | None = None) -> None:
        self.sock = sock
        self.address = address
        self.broker = broker
        self.cert_username = cert_username
        self.facts = facts
        self.client: Client | None = None
        self.pending_bytes = 0  # queued for sending and not yet sent
        self.created = self.last_read = time.monotonic()  # for the CONNECT and keepalive deadlines
        self._on_closed = on_closed  # called with this connection once the socket is closed
        self._readable = None  # the io watcher that starts a reader when bytes arrive
        self._decoder = None
        # Plain TCP goes straight to the kernel's non-blocking socket; TLS needs gevent's
        # wrapper, which waits cooperatively for the rest of a record. A stream with
        # pending() (TLS, WebSocket) holds bytes above the kernel and is used as a socket;
        # a WebSocket's send_nowait (frames, never waits) takes the place of send.
        buffered = hasattr(sock, "pending")
        self._raw_recv = None if buffered else sock._sock.recv
        self._raw_send = getattr(sock, "send_nowait", None) if buffered else sock._sock.send
        self._chunks: list[bytes] = []
        self._flush_scheduled = False
        self._writer = None  # the greenlet draining the queue while the socket is slow
        self._give_up = None  # the timer that ends a closing connection whose peer does not read
        self._closing = False
        self._done = False  # the socket is shut down; nothing more can be sent

    # -- transport interface used by Client --------------------------------------------

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        self._chunks.append(data)
        self.pending_bytes += len(data)
        if not self._flush_scheduled and self._writer is None:
            self._flush_scheduled = True
            get_hub().loop.run_callback(self._flush)

    def close(self) -> None:
        """Send what is queued, then shut the socket down (which wakes the reader)."""
        if self._closing:
            return
        self._closing = True
        # A peer that stopped reading would keep a writer blocked, and the socket and its
        # max_connections place taken, for ever: it gets _FLUSH_TIMEOUT to take what is queued.
        self._give_up = get_hub().loop.timer(_FLUSH_TIMEOUT)
        self._give_up.start(self._shut_down)
        if not self._flush_scheduled and self._writer is None:
            self._flush_scheduled = True
            get_hub().loop.run_callback(self._flush)

    # -- sending -----------------------------------------------------------------------

    def _take_chunks(self) -> bytes:
        chunks = self._chunks
        data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
        self.broker.stats.packets_sent += len(chunks)
        chunks.clear()
        return data

    def _sent(self, count: int) -> None:
        self.pending_bytes -= count
        self.broker.stats.bytes_sent += count

    def _flush(self) -> None:
        """Loop callback: send without blocking; hand what is left to a writer greenlet."""
        self._flush_scheduled = False
        if self._done or self._writer is not None:
            return
        if self._chunks:
            data = self._take_chunks()
            sent = 0
            if self._raw_send is not None:
                try:
                    sent = self._raw_send(data)
                except BlockingIOError:
                    pass
                except OSError:
                    self._shut_down()
                    return
                self._sent(sent)
            if sent < len(data):
                self._writer = gevent.spawn(self._drain, data[sent:] if sent else data)
                return
        if self._closing:
            self._shut_down()

    def _drain(self, data: bytes) -> None:
        """Writer greenlet: sendall what the socket could not take at once, and whatever
        is queued meanwhile, then leave the socket to the loop callback again."""
        try:
            while True:
                self.sock.sendall(data)
                self._sent(len(data))
                if not self._chunks:
                    break
                data = self._take_chunks()
        except OSError:
            self._shut_down()
            return
        finally:
            self._writer = None
        if self._closing:
            self._shut_down()

    def _shut_down(self) -> None:
        if self._done:
            return
        self._done = True
        self._chunks.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader with EOF
        except OSError:
            pass

    # -- deadlines, checked by the listener's sweep -------------------------------------

    def expired(self, now: float) -> bool:
        """No CONNECT within connect_timeout, or no packet within the keepalive."""
        client = self.client
        if client is None or client.closed:
            return False
        if client.info is None:
            return now - self.created > self.broker.config.connect_timeout
        timeout = client.keepalive_timeout
        return timeout is not None and now - self.last_read > timeout

    # -- reading -----------------------------------------------------------------------

    def start(self) -> None:
        """Begin serving; returns at once (the caller's greenlet may end)."""
        self.client = Client(self.broker, self, self.address, self.cert_username, self.facts)
        self._decoder = MqttDecoder(self.broker.config.max_packet_size)
        self._readable = get_hub().loop.io(self.sock.fileno(), 1)
        self._readable.start(self._on_readable)

    def _on_readable(self) -> None:
        """Loop callback: the hub must not block, so the reading happens in a greenlet."""
        self._readable.stop()
        _workers.run(self._read)

    def _read(self) -> None:
        try:
            reason = self._read_available()
        except Exception:
            log.exception("connection %s:%s failed", *self.address[:2])
            reason = reasons.TCP_CLOSED
        if reason is None:
            self._readable.start(self._on_readable)
        else:
            self._finish(reason)

    def _read_available(self) -> str | None:
        """Read and handle what the socket holds; the reason to close, or None to wait."""
        client = self.client
        stats = self.broker.stats
        while True:
            try:
                data = self._raw_recv(_READ_SIZE) if self._raw_recv is not None else self.sock.recv(_READ_SIZE)
            except BlockingIOError:
                return None  # woken for nothing
            except OSError:
                return reasons.TCP_CLOSED
            if not data:
                return reasons.TCP_CLOSED
            self.last_read = time.monotonic()
            stats.bytes_received += len(data)
            try:
                packets = self._decoder.feed(data)
            except MqttError as error:
                for packet in error.packets:  # what came before the bad bytes still counts
                    if client.closed:  # e.g. a DISCONNECT came first
                        break
                    client.handle(packet)
                client.protocol_violation(error)
                return reasons.TCP_CLOSED
            stats.packets_received += len(packets)
            for packet in packets:
                client.handle(packet)
                if client.closed:
                    return reasons.TCP_CLOSED
            # A full read may have left more in the kernel, and TLS may hold decrypted bytes
            # that no watcher sees: read on. Otherwise other connections get their turn.
            if len(data) < _READ_SIZE and (self._raw_recv is not None or not self.sock.pending()):
                return None

    def _finish(self, reason: str) -> None:
        self._readable.close()
        self.client.connection_lost(reason)
        self._send_last_words()
        if self._give_up is not None:
            self._give_up.close()
        self._done = True
        self.sock.close()
        self._on_closed(self)
        if self.pending_bytes:
            log.info("connection of %s closed with %d byte(s) unsent", self.client.name(), self.pending_bytes)

    def _send_last_words(self) -> None:
        """Before closing, send what is still queued (a refusing CONNACK, a DISCONNECT),
        giving a slow peer at most _FLUSH_TIMEOUT."""
        writer = self._writer
        if writer is not None:
            writer.join(_FLUSH_TIMEOUT)
            writer.kill(block=False)
        elif self._chunks and not self._done:
            data = self._take_chunks()
            with gevent.Timeout(_FLUSH_TIMEOUT, False):
                try:
                    self.sock.sendall(data)
                    self._sent(len(data))
                except OSError:
                    pass


class _Server(StreamServer):
    """A StreamServer that leaves each socket open when its handler returns: the
    `Connection` outlives the handler's greenlet and closes the socket itself."""

    def do_close(self, sock, *args) -> None:
        pass


class TcpListener:
    """One `listeners.tcp` or `listeners.ssl` entry: admits connections, does the TLS
    handshake for ssl, and starts a `Connection` for each."""

    def __init__(self, config: ListenerConfig, broker, admission: Admission | None = None) -> None:
        self.config = config
        self.broker = broker
        self.admission = admission or Admission(broker.limits, broker.stats)
        self._tls_context = None
        # A worker greenlet runs each handler (it admits the socket and does the TLS
        # handshake): no gevent Greenlet object, and no one waits for a handler.
        self._server = _Server((config.host, config.port), self._handle, backlog=1024, spawn=_workers.run)
        self._connections: set[Connection] = set()
        self._sweeper = None

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address[:2]

    def start(self) -> None:
        if self.config.tls is not None:  # a bad key or password stops start-up, as a bad port does
            self._tls_context = tls.server_context(self.config.tls)
        self._server.start()
        self._sweeper = gevent.spawn(self._sweep)
        host, port = self.address
        log.info("MQTT listener %s listening on %s:%d", self.config.name, host, port)

    def close(self) -> None:
        """Stop accepting; connections already open are left to the broker to end."""
        self._server.close()
        if self._sweeper is not None:
            self._sweeper.kill(block=False)

    def stop(self, timeout: float) -> None:
        """Stop accepting and give open connections `timeout` seconds to finish."""
        self._server.stop(timeout)

    def _sweep(self) -> None:
        """Close connections past their CONNECT or keepalive deadline. One periodic pass
        costs less than a timer per read on every connection."""
        stats = self.broker.stats
        while True:
            gevent.sleep(_SWEEP_INTERVAL)
            now = time.monotonic()
            for connection in [c for c in self._connections if c.expired(now)]:
                client = connection.client
                if client.info is None:
                    stats.limits_hit["connect_timeout"] += 1
                client.connection_lost(reasons.KEEPALIVE_TIMEOUT)

    def _handle(self, sock, address) -> None:
        if not self.admission.admit(address[0]):
            sock.close()
            return
        connection = None
        try:
            connection = self._connection(sock, address)
        finally:
            if connection is None:  # refused at the TLS handshake, or failed
                sock.close()
                self.admission.release()
        if connection is not None:
            self._connections.add(connection)
            connection.start()

    def _connection(self, sock, address) -> Connection | None:
        """The connection over an admitted socket, after the TLS handshake for ssl; None
        when the handshake fails."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cert_username = None
        facts = {"p": str(sock.getsockname()[1])}
        if self._tls_context is not None:
            try:
                sock = tls.handshake(self._tls_context, sock, self.broker.config.connect_timeout)
            except OSError as error:
                self.broker.stats.tls_handshake_failures += 1
                log.info("TLS handshake with %s:%s failed: %s", address[0], address[1], error)
                return None
            common_name, subject = tls.peer_names(sock)
            facts.update(C=common_name or "", d=subject or "")
            if self.config.tls.peer_cert_as_username == "cn":
                cert_username = common_name
        sock = self._stream(sock, address)
        if sock is None:
            return None
        return Connection(sock, address, self.broker, self._closed, cert_username, facts)

    def _stream(self, sock, address):
        """What MQTT bytes travel over: the socket itself here; ws.py upgrades it to a
        WebSocket. None when that fails (the socket is then closed)."""
        return sock

    def _closed(self, connection: Connection) -> None:
        self._connections.discard(connection)
        self.admission.release()
