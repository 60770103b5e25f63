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
from gevent.event import Event
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
_FLUSH_TIMEOUT = 2.0  # seconds a closing connection may take to send what it has queued


class Connection:
    """One accepted socket: the transport of a `Client` (`write`, `close`, `pending_bytes`)."""

    def __init__(self, sock, address, broker, cert_username: str | None = None, facts: dict | None = None) -> None:
        self.sock = sock
        self.address = address
        self.broker = broker
        self.cert_username = cert_username
        self.facts = facts
        self.pending_bytes = 0  # queued for sending and not yet sent
        self._chunks: list[bytes] = []
        self._wake = Event()
        self._closing = False

    # -- transport interface used by Client --------------------------------------------

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        self._chunks.append(data)
        self.pending_bytes += len(data)
        self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()

    # -- the two loops -----------------------------------------------------------------

    def serve(self) -> None:
        client = Client(self.broker, self, self.address, self.cert_username, self.facts)
        writer = gevent.spawn(self._write_loop)
        try:
            reason = self._read_loop(client)
        except Exception:
            log.exception("connection %s:%s failed", *self.address[:2])
            reason = reasons.TCP_CLOSED
        client.connection_lost(reason)
        writer.join(_FLUSH_TIMEOUT)
        writer.kill(block=False)
        self.sock.close()

    def _read_loop(self, client: Client) -> str:
        sock = self.sock
        stats = self.broker.stats
        decoder = MqttDecoder(self.broker.config.max_packet_size)
        # One deadline for the whole CONNECT, so a client trickling bytes cannot hold the socket.
        connect_deadline = time.monotonic() + self.broker.config.connect_timeout
        while not client.closed:
            if client.info is None:
                sock.settimeout(max(connect_deadline - time.monotonic(), 0.001))
            try:
                data = sock.recv(_READ_SIZE)
            except socket.timeout:
                if client.info is None:
                    stats.limits_hit["connect_timeout"] += 1
                return reasons.KEEPALIVE_TIMEOUT
            except OSError:
                return reasons.TCP_CLOSED
            if not data:
                return reasons.TCP_CLOSED
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
            connected_before = client.connected
            for packet in packets:
                client.handle(packet)
                if client.closed:
                    break
            if client.connected and not connected_before:
                sock.settimeout(client.keepalive_timeout)
        return reasons.TCP_CLOSED

    def _write_loop(self) -> None:
        sock = self.sock
        stats = self.broker.stats
        wake = self._wake
        chunks = self._chunks
        try:
            while True:
                wake.wait()
                wake.clear()
                if chunks:
                    data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
                    stats.packets_sent += len(chunks)
                    chunks.clear()
                    sock.sendall(data)
                    self.pending_bytes -= len(data)
                    stats.bytes_sent += len(data)
                if self._closing and not chunks:
                    break
        except OSError:
            pass
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the reader with EOF
        except OSError:
            pass


class TcpListener:
    """One `listeners.tcp` or `listeners.ssl` entry: admits connections, does the TLS
    handshake for ssl, and serves each in its own greenlet."""

    def __init__(self, config: ListenerConfig, broker, admission: Admission | None = None) -> None:
        self.config = config
        self.broker = broker
        self.admission = admission or Admission(broker.limits, broker.stats)
        self._tls_context = None
        self._server = StreamServer((config.host, config.port), self._handle, backlog=1024)

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address[:2]

    def start(self) -> None:
        if self.config.tls is not None:  # a bad key or password stops start-up, as a bad port does
            self._tls_context = tls.server_context(self.config.tls)
        self._server.start()
        host, port = self.address
        log.info("MQTT listener %s listening on %s:%d", self.config.name, host, port)

    def close(self) -> None:
        """Stop accepting; connections already open are left to the broker to end."""
        self._server.close()

    def stop(self, timeout: float) -> None:
        """Stop accepting and give open connections `timeout` seconds to finish."""
        self._server.stop(timeout)

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
            Connection(sock, address, self.broker, cert_username, facts).serve()
        finally:
            self.admission.release()
