"""MQTT over TCP: a gevent StreamServer per listener and the I/O loop of each connection.

Only I/O lives here. Each connection reads into the codec and hands packets to its
`Client`; one writer greenlet per connection owns the socket's sending side and coalesces
everything queued since its last write into one `sendall`, so writes never interleave and
a burst of small packets costs one system call.
"""

from __future__ import annotations

import logging
import socket
import time

import gevent
from gevent import get_hub
from gevent.ssl import SSLSocket
from gevent.server import StreamServer

from ..broker import hooks as reasons
from ..broker.client import Client
from ..config.model import ListenerConfig
from ..mqtt.codec import MqttDecoder
from ..mqtt.errors import MqttError
from . import tls
from .admission import Admission

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_SWEEP_INTERVAL = 0.5  # seconds between keepalive/CONNECT deadline checks
_FLUSH_TIMEOUT = 2.0  # seconds a closing connection may take to send what it has queued


class Connection:
    """One accepted socket: the transport of a `Client` (`write`, `close`, `pending_bytes`).

    Writes are queued and flushed once per turn of the event loop, from a loop callback:
    everything the broker queued for this socket in that turn (a burst of fan-out, an ack
    and the messages it released) goes out in one non-blocking `send`, with no greenlet
    switch. Only when the kernel's buffer is full (a slow reader) or the socket is TLS does
    a writer greenlet take over with `sendall`, until the queue is empty again; so an idle
    connection costs one greenlet (its reader), and there is never more than one writer.
    """

    __slots__ = ("sock", "address", "broker", "cert_username", "facts", "client", "pending_bytes",
                 "created", "last_read", "_chunks", "_raw_send", "_flush_scheduled", "_writer",
                 "_closing", "_done")

    def __init__(self, sock, address, broker, cert_username: str | None = None, facts: dict | None = None) -> None:
        self.sock = sock
        self.address = address
        self.broker = broker
        self.cert_username = cert_username
        self.facts = facts
        self.client: Client | None = None
        self.pending_bytes = 0  # queued for sending and not yet sent
        self.created = self.last_read = time.monotonic()  # for the CONNECT and keepalive deadlines
        self._chunks: list[bytes] = []
        self._raw_send = None if isinstance(sock, SSLSocket) else sock._sock.send
        self._flush_scheduled = False
        self._writer = None  # the greenlet draining the queue while the socket is slow
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

    def serve(self) -> None:
        client = self.client = Client(self.broker, self, self.address, self.cert_username, self.facts)
        try:
            reason = self._read_loop(client)
        except Exception:
            log.exception("connection %s:%s failed", *self.address[:2])
            reason = reasons.TCP_CLOSED
        client.connection_lost(reason)
        self._send_last_words()
        self._done = True
        self.sock.close()

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

    def _read_loop(self, client: Client) -> str:
        sock = self.sock
        stats = self.broker.stats
        decoder = MqttDecoder(self.broker.config.max_packet_size)
        monotonic = time.monotonic
        while not client.closed:
            try:
                data = sock.recv(_READ_SIZE)
            except OSError:
                return reasons.TCP_CLOSED
            if not data:
                return reasons.TCP_CLOSED
            self.last_read = monotonic()
            stats.bytes_received += len(data)
            try:
                packets = decoder.feed(data)
            except MqttError as error:
                for packet in error.packets:  # what came before the bad bytes still counts
                    if client.closed:  # e.g. a DISCONNECT came first
                        break
                    client.handle(packet)
                client.protocol_violation(error)
                break
            stats.packets_received += len(packets)
            for packet in packets:
                client.handle(packet)
                if client.closed:
                    break
        return reasons.TCP_CLOSED


class TcpListener:
    """One `listeners.tcp` or `listeners.ssl` entry: admits connections, does the TLS
    handshake for ssl, and serves each in its own greenlet."""

    def __init__(self, config: ListenerConfig, broker, admission: Admission | None = None) -> None:
        self.config = config
        self.broker = broker
        self.admission = admission or Admission(broker.limits, broker.stats)
        self._tls_context = None
        # A bare greenlet per connection: gevent's Greenlet object would add ~0.7 KB to every
        # idle connection, and the broker ends connections itself at shutdown.
        self._server = StreamServer((config.host, config.port), self._handle, backlog=1024,
                                    spawn=gevent.spawn_raw)
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
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cert_username = None
            facts = {"p": str(sock.getsockname()[1])}
            if self._tls_context is not None:
                try:
                    sock = tls.handshake(self._tls_context, sock, self.broker.config.connect_timeout)
                except OSError as error:
                    self.broker.stats.tls_handshake_failures += 1
                    log.info("TLS handshake with %s:%s failed: %s", address[0], address[1], error)
                    sock.close()
                    return
                common_name, subject = tls.peer_names(sock)
                facts.update(C=common_name or "", d=subject or "")
                if self.config.tls.peer_cert_as_username == "cn":
                    cert_username = common_name
            connection = Connection(sock, address, self.broker, cert_username, facts)
            self._connections.add(connection)
            try:
                connection.serve()
            finally:
                self._connections.discard(connection)
        finally:
            self.admission.release()
