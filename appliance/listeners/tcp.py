"""MQTT over TCP: a gevent StreamServer per listener and the I/O of each connection.

Only I/O lives here. A quiet connection costs no greenlet: when bytes arrive, an io
watcher on its socket hands the connection to a worker greenlet (`workers.py`), which
feeds them to its `Client`, answers the client's questions through the `Gate` and goes
back to wait for the next job. Writes are queued and flushed once per turn of the event
loop, so a burst of small packets costs one system call.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from dataclasses import dataclass
from itertools import islice

import gevent
import gevent.socket
from gevent import get_hub
from gevent.event import Event
from gevent.server import StreamServer

from ..broker import hooks as reasons
from ..broker.client import Client, ClientSettings, Router
from ..broker.state import State
from ..broker.stats import BrokerStats
from ..broker.timers import Timers
from ..config.model import ListenerConfig
from ..logs import announce
from . import tls
from .admission import Admission
from .gate import Gate
from .workers import Workers

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_READ_BURST = 4  # full reads of one connection before the others get a turn
_FLUSH_TIMEOUT = 2.0  # seconds a closing connection may take to send what it has queued
_IOV_MAX = 512  # buffers handed to one sendmsg (the kernel takes at most 1024)
_PAUSE = 0.0001  # seconds: the shortest timer, so the loop polls every socket once in between
_JOIN_LIMIT = 65536  # bytes joined into one write where there is no sendmsg (TLS, WebSocket)

_workers = Workers()  # run read bursts and accepted sockets' handlers, for every listener


@dataclass
class Wiring:
    """What every connection of the appliance is built from (app.py makes one, shared by
    every listener). A connection reads it once, when it is made; `reconfigure` swaps the
    settings in one step (no yield between them), so a reload applies to the next
    connection and never to half of one."""

    router: Router  # the broker
    settings: ClientSettings
    stats: BrokerStats
    timers: Timers  # CONNECT and keepalive deadlines
    gate: Gate  # answers the clients' questions (access control)
    max_outbox_bytes: int  # limits.max_outbox_bytes

    def reconfigure(self, settings: ClientSettings, max_outbox_bytes: int) -> None:
        self.settings, self.max_outbox_bytes = settings, max_outbox_bytes


class Connection:
    """One accepted socket: the transport of a `Client` (`write`, `has_room`, `close`).

    Works over any socket-like object with recv/send/sendall/fileno/shutdown/close (and
    `pending()` for bytes it has buffered, as an SSLSocket or a WebSocket stream); a plain
    gevent TCP socket gets the fast path straight to the kernel's non-blocking socket.

    Reading: while the peer is quiet the connection is just an io watcher. When the socket
    turns readable a worker greenlet reads what is there, hands it to the client, answers
    its questions (which may block, e.g. on an HTTP auth server) and re-arms the watcher.

    Writing: the outbox is a queue of chunks with a byte budget (limits.max_outbox_bytes).
    Everything queued for the socket in one turn of the event loop goes out from a loop
    callback in one non-blocking `sendmsg` (writev: the chunks are not copied into one).
    Only when the kernel's buffer is full (a slow reader) or the socket has no sendmsg
    (TLS) does a writer greenlet take over, until the queue is empty again; so there is
    never more than one writer. Over the budget, QoS 0 messages are dropped and QoS 1/2
    wait in the session as references; when the queue falls back under half the budget
    the client is told (`outbox_drained`) and the session sends on.
    """

    __slots__ = ("sock", "address", "client", "pending_bytes", "created", "last_read", "_stats", "_timers",
                 "_gate", "_budget", "_on_closed", "_readable", "_raw_recv", "_raw_sock", "_chunks",
                 "_flush_scheduled", "_writer", "_give_up", "_closing", "_done", "_wanting_room", "_deadline",
                 "_keepalive_armed", "_connect_timeout", "_cut", "_held")

    def __init__(self, sock, address, wiring: Wiring, on_closed) -> None:
        self.sock = sock
        self.address = address
        self.client: Client | None = None
        self.pending_bytes = 0  # queued for sending and not yet sent
        self.created = self.last_read = time.monotonic()  # for the CONNECT and keepalive deadlines
        self._stats = wiring.stats
        self._timers = wiring.timers
        self._gate = wiring.gate
        self._budget = wiring.max_outbox_bytes
        self._connect_timeout = wiring.settings.mqtt.connect_timeout
        self._on_closed = on_closed  # called with this connection once the socket is closed
        self._readable = None  # the io watcher that starts a reader when bytes arrive
        # A plain TCP socket goes straight to the kernel's non-blocking socket; anything else
        # (TLS, WebSocket) through its own methods, which wait cooperatively.
        plain = type(sock) is gevent.socket.socket
        self._raw_sock = sock._sock if plain else None
        self._raw_recv = sock._sock.recv if plain else None
        # Made at the first write and dropped once all is sent: an empty deque costs 600
        # bytes, which 10,000 idle connections would all pay.
        self._chunks: deque | None = None
        self._flush_scheduled = False
        self._held = False  # hold_output(): queued bytes wait for a durability callback
        self._writer = None  # the greenlet draining the queue while the socket is slow
        self._give_up = None  # the timer that ends a closing connection whose peer does not read
        self._closing = False
        self._done = False  # nothing more can be sent (FIN sent, or the socket is shut down)
        self._cut = False  # shut down both ways
        self._wanting_room = False  # has_room() said no: tell the client when there is room again
        self._deadline = None  # the CONNECT or keepalive Timer
        self._keepalive_armed = False

    # -- transport interface used by Client --------------------------------------------

    def write(self, data: bytes, tail: bytes | None = None) -> None:
        """Queue one packet (`tail`: a shared payload part, queued without copying)."""
        if self._closing:
            return
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = deque()
        chunks.append(data)
        size = len(data)
        if tail is not None:
            chunks.append(tail)
            size += len(tail)
        self.pending_bytes += size
        self._stats.packets_sent += 1
        if not self._flush_scheduled and self._writer is None:
            self._flush_scheduled = True
            get_hub().loop.run_callback(self._flush)

    def has_room(self) -> bool:
        if self.pending_bytes < self._budget:
            return True
        self._wanting_room = True
        return False

    def hold_output(self, until) -> None:
        """Queue, but send nothing until `until` calls back (the CONNACK of a persistent
        session waits for its commit)."""
        self._held = True
        until(self._release_output)

    def _release_output(self) -> None:
        self._held = False
        if not self._flush_scheduled and self._writer is None:
            self._flush_scheduled = True
            get_hub().loop.run_callback(self._flush)

    def pause(self) -> None:
        """Let the loop run other connections (and flush what this one queued) before
        going on: called by the client between batches of long work. A timer, not
        sleep(0): callbacks queued by sleep(0) run again before the loop polls, so other
        sockets would never be read meanwhile."""
        gevent.sleep(_PAUSE)

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

    def _sent(self, count: int) -> None:
        self.pending_bytes -= count
        self._stats.bytes_sent += count
        if self._wanting_room and self.pending_bytes <= self._budget // 2 and not self._closing:
            self._wanting_room = False
            self.client.outbox_drained()

    def _send_some(self) -> bool:
        """One non-blocking sendmsg of what is queued; whether the queue is empty after it.
        Raises OSError (BlockingIOError when the kernel took nothing)."""
        chunks = self._chunks
        if len(chunks) == 1:
            sent = self._raw_sock.send(chunks[0])
        else:
            sent = self._raw_sock.sendmsg(list(islice(chunks, _IOV_MAX)))
        remaining = sent
        while remaining:
            size = len(chunks[0])
            if size <= remaining:
                chunks.popleft()
                remaining -= size
            else:
                chunks[0] = memoryview(chunks[0])[remaining:]
                remaining = 0
        self._sent(sent)
        if chunks:
            return False
        if chunks is self._chunks:  # (_sent may have queued more, or the socket gone)
            self._chunks = None
        return True

    def _take_joined(self) -> bytes:
        """The next chunks, joined up to _JOIN_LIMIT bytes (a bounded copy), for sockets
        without sendmsg."""
        chunks = self._chunks
        first = chunks.popleft()
        if not chunks or len(first) >= _JOIN_LIMIT:
            return first
        parts = [first]
        size = len(first)
        while chunks and size + len(chunks[0]) <= _JOIN_LIMIT:
            chunk = chunks.popleft()
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    def _flush(self) -> None:
        """Loop callback: send without blocking; hand what is left to a writer greenlet."""
        self._flush_scheduled = False
        if self._done or self._writer is not None or self._held:
            return
        if self._chunks:
            if self._raw_sock is not None:
                try:
                    self._send_some()
                except BlockingIOError:
                    pass
                except OSError:
                    self._shut_down()
                    return
            if self._chunks:
                self._writer = gevent.spawn(self._drain)
                return
        if self._closing:
            self._end_sending()

    def _drain(self) -> None:
        """Writer greenlet: send what the socket could not take at once, and whatever is
        queued meanwhile, then leave the socket to the loop callback again."""
        try:
            while self._chunks and not self._done:
                if self._raw_sock is None:
                    data = self._take_joined()
                    self.sock.sendall(data)
                    self._sent(len(data))
                    continue
                try:
                    if self._send_some():
                        break
                except BlockingIOError:
                    pass
                gevent.socket.wait_write(self._raw_sock.fileno())
            if not self._chunks:
                self._chunks = None
        except OSError:
            self._shut_down()
            return
        finally:
            self._writer = None
        if self._closing:
            self._end_sending()

    def _end_sending(self) -> None:
        """Closing, and everything is sent: FIN; the reader goes on until the peer closes."""
        if self._done:
            return
        self._done = True
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _shut_down(self) -> None:
        """An error, or the peer took too long: stop both ways (wakes the reader with EOF)."""
        if self._cut:
            return
        self._cut = self._done = True
        self._chunks = None
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def abort(self) -> None:
        """Shut the socket down now, whatever is queued (the listener's stop deadline passed)."""
        self._shut_down()

    # -- deadlines, on the shared timers -----------------------------------------------

    def _check_deadline(self) -> None:
        """No CONNECT within connect_timeout, or no packet within the keepalive."""
        client = self.client
        self._deadline = None
        if client.closed:
            return
        now = time.monotonic()
        state = client.state
        if state is State.CONNECTING:
            client.connect_overdue()
            return
        if state is State.AUTHENTICATING:  # the verdict is late, not the client
            self._deadline = self._timers.call_at(now + self._connect_timeout, self._check_deadline)
            return
        self._arm_keepalive(now)

    def _arm_keepalive(self, now: float) -> None:
        self._keepalive_armed = True
        timeout = self.client.keepalive_timeout
        if timeout is None:
            return
        due = self.last_read + timeout
        if now >= due:
            self.client.keepalive_expired()
        else:
            self._deadline = self._timers.call_at(due, self._check_deadline)

    # -- reading -----------------------------------------------------------------------

    def start(self, client: Client) -> None:
        """Begin serving `client` (made over this transport); returns at once."""
        self.client = client
        self._deadline = self._timers.call_at(self.created + self._connect_timeout, self._check_deadline)
        self._readable = get_hub().loop.io(self.sock.fileno(), 1)
        self._readable.start(self._on_readable)

    def _on_readable(self) -> None:
        """Loop callback: the hub must not block, so the reading happens in a greenlet,
        started in the order the sockets became ready (see `_ready`)."""
        self._readable.stop()
        _ready.add(self)

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
        stats = self._stats
        gate = self._gate
        reads = 0
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
            question = client.receive_data(data)
            while question is not None:
                question = client.answer(gate.answer(question))
            if client.closed:
                # Read on, dropping what comes, until the peer closes or _FLUSH_TIMEOUT
                # passes: closing with unread bytes would reset the connection, and the
                # peer could lose our last packets (a DISCONNECT) before reading them.
                return None
            if not self._keepalive_armed and client.state is State.CONNECTED:
                if self._deadline is not None:
                    self._deadline.cancel()
                self._arm_keepalive(self.last_read)
            # TLS may hold decrypted bytes that no watcher sees: read on while it does. A
            # full read may have left more in the kernel: read on, but at most
            # _READ_BURST reads, then let other connections have their turn (the watcher
            # fires again at once), so one client streaming large messages cannot hold
            # the loop for a whole batch.
            if self._raw_recv is None and self.sock.pending():
                continue
            reads += 1
            if len(data) < _READ_SIZE or reads >= _READ_BURST:
                return None

    def _finish(self, reason: str) -> None:
        self._readable.close()
        if self._deadline is not None:
            self._deadline.cancel()
        self.client.connection_lost(reason)
        self._send_last_words()
        if self._give_up is not None:
            self._give_up.close()
        self._done = True
        unsent = self.pending_bytes
        self._chunks = None  # a stuck subscriber's backlog is freed with it
        self.sock.close()
        self._on_closed(self)
        if unsent:
            log.info("connection of %s closed with %d byte(s) unsent", self.client.name(), unsent)

    def _send_last_words(self) -> None:
        """Before closing, send what is still queued (a refusing CONNACK, a DISCONNECT),
        giving a slow peer at most _FLUSH_TIMEOUT."""
        writer = self._writer
        if writer is not None:
            writer.join(_FLUSH_TIMEOUT)
            writer.kill(block=False)
            return
        if self._done:
            return
        with gevent.Timeout(_FLUSH_TIMEOUT, False):
            try:
                while self._chunks:
                    data = self._take_joined()
                    self.sock.sendall(data)
                    self._sent(len(data))
            except OSError:
                pass


class _ReadyQueue:
    """Connections whose sockets turned readable in this loop turn, read in the order they
    became ready. libev runs one turn's io callbacks in reverse (readable 0, 1, 2 run 2,
    1, 0), so a PUBLISH just after another connection's SUBSCRIBE would often be routed
    before that SUBSCRIBE took effect. The io callbacks only collect; one loop callback,
    after them, starts the reads, oldest first."""

    __slots__ = ("_batch", "_scheduled")

    def __init__(self) -> None:
        self._batch: list[Connection] = []
        self._scheduled = False

    def add(self, connection: Connection) -> None:
        self._batch.append(connection)
        if not self._scheduled:
            self._scheduled = True
            get_hub().loop.run_callback(self._run)

    def _run(self) -> None:
        batch, self._batch = self._batch, []
        self._scheduled = False
        run = _workers.run
        for connection in reversed(batch):  # undo libev's reversal
            run(connection._read)


_ready = _ReadyQueue()


def serve(connection: Connection, wiring: Wiring, cert_username: str | None = None,
          facts: dict | None = None) -> None:
    """Start the protocol over `connection` (any listener: TCP, TLS, WebSocket)."""
    connection.start(Client(wiring.router, connection, wiring.settings, wiring.stats, connection.address,
                            cert_username, facts))


class _Server(StreamServer):
    """A StreamServer that leaves each socket open when its handler returns: the
    `Connection` outlives the handler's greenlet and closes the socket itself."""

    def do_close(self, sock, *args) -> None:
        pass


class TcpListener:
    """One `listeners.tcp` or `listeners.ssl` entry: admits connections, does the TLS
    handshake for ssl, starts a `Connection` for each, and owns them until they close."""

    def __init__(self, config: ListenerConfig, wiring: Wiring, admission: Admission) -> None:
        self.config = config
        self._wiring = wiring
        self.admission = admission
        self._tls_context = None
        # A worker greenlet runs each handler (it admits the socket and does the TLS
        # handshake): no gevent Greenlet object, and no one waits for a handler.
        self._server = _Server((config.host, config.port), self._handle, backlog=1024, spawn=_workers.run)
        self._connections: set[Connection] = set()
        self._all_closed = Event()
        self._all_closed.set()

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address[:2]

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def start(self) -> None:
        if self.config.tls is not None:  # a bad key or password stops start-up, as a bad port does
            self._tls_context = tls.server_context(self.config.tls)
        self._server.start()
        host, port = self.address
        announce("MQTT listener %s listening on %s:%d%s", self.config.name, host, port, self._serving())

    def _serving(self) -> str:
        """What the listening line says after host:port (ws.py: the URL clients open)."""
        return ""

    def close(self) -> None:
        """Stop accepting; connections already open stay (see `stop`)."""
        self._server.close()

    def stop(self, timeout: float) -> None:
        """Stop accepting, disconnect every connection (v5: DISCONNECT 0x8B) and wait for
        them to close within `timeout` seconds; then cut off whoever is left."""
        self.close()
        for connection in list(self._connections):
            connection.client.shut_down()
        if not self._all_closed.wait(timeout):
            log.info("listener %s: %d connection(s) still closing after %.1fs, cutting them off",
                     self.config.name, len(self._connections), timeout)
            for connection in list(self._connections):
                connection.abort()
            self._all_closed.wait(0.5)

    def _handle(self, sock, address) -> None:
        if not self.admission.admit(address[0]):
            sock.close()
            return
        connection = None
        try:
            connection = self._connection(sock, address)
        finally:
            if connection is None:  # refused at the TLS handshake or the upgrade, or failed
                sock.close()
                self.admission.release()
        if connection is not None:
            self._connections.add(connection)
            self._all_closed.clear()
            serve(connection, self._wiring, self._cert_username(connection.sock), self._facts(connection.sock))

    def _connection(self, sock, address) -> Connection | None:
        """The connection over an admitted socket, after the TLS handshake for ssl (and the
        upgrade for ws); None when either fails."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls_context is not None:
            try:
                sock = tls.handshake(self._tls_context, sock, self._wiring.settings.mqtt.connect_timeout,
                                     self.admission)
            except OSError as error:
                self._wiring.stats.tls_handshake_failures += 1
                log.info("TLS handshake with %s:%s failed: %s", address[0], address[1], error)
                return None
        stream = self._stream(sock, address)
        if stream is None:
            return None
        return Connection(stream, address, self._wiring, self._closed)

    def _stream(self, sock, address):
        """What MQTT bytes travel over: the socket itself here; ws.py upgrades it to a
        WebSocket. None when that fails (the socket is then closed)."""
        return sock

    def _facts(self, sock) -> dict:
        """What http_auth may ask about the connection: %p, and %C / %d for TLS."""
        facts = {"p": str(sock.getsockname()[1])}
        if self._tls_context is not None:
            common_name, subject = tls.peer_names(sock)
            facts.update(C=common_name or "", d=subject or "")
        return facts

    def _cert_username(self, sock) -> str | None:
        if self._tls_context is not None and self.config.tls.peer_cert_as_username == "cn":
            return tls.peer_names(sock)[0]
        return None

    def _closed(self, connection: Connection) -> None:
        self._connections.discard(connection)
        self.admission.release()
        if not self._connections:
            self._all_closed.set()
