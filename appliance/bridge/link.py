"""The I/O shell of one bridge: a gevent TCP or TLS connection to the upstream, kept up.

One runner greenlet per bridge connects, sends CONNECT, waits for CONNACK, subscribes and
then writes: acks the reader queued, the send queue in order within the inflight window,
PINGREQ when quiet, and (v3/v4) resends of what waited too long. A reader greenlet per
connection decodes the upstream's packets and hands them to the session. On any failure
the connection is closed, and the runner sleeps a capped exponential backoff with full
jitter before the next attempt.

Problems are logged once per state change: the first failure after being up, or a failure
different from the previous one, is a warning; repeats of the same failure are debug. A
successful connection is logged at info. Never a traceback for network or TLS errors.
"""

from __future__ import annotations

import logging
import random
import time

import gevent
from gevent import socket, ssl
from gevent.event import Event

from ..config.bridges import BridgeConfig
from ..mqtt import Disconnect, MqttDecoder, MqttError, encode
from .metrics import BridgeStats
from .queue import SendQueue
from .session import Refused, UpstreamSession, reason_text

log = logging.getLogger("appliance.bridge")

_READ_SIZE = 65536
_WRITE_BATCH = 256  # PUBLISH packets joined into one send


class ConnectionLost(Exception):
    """The connection ended; the message says why (for the log)."""


def backoff_delay(attempt: int, low: float, high: float, rand: random.Random = random._inst) -> float:
    """Full jitter over a capped exponential: uniform in [low, min(high, low * 2**attempt)]."""
    ceiling = min(high, low * (2 ** min(attempt, 30)))
    return low + rand.random() * (ceiling - low)


class Link:
    """Keeps one bridge connected; `deliver(Incoming)` is called for every upstream PUBLISH."""

    def __init__(self, config: BridgeConfig, queue: SendQueue, stats: BridgeStats, deliver, observe_rtt,
                 max_packet_size: int) -> None:
        self.config = config
        self._max_packet_size = max_packet_size  # the local broker's: nothing bigger could be routed
        self.queue = queue
        self.stats = stats
        self._deliver = deliver
        self._observe_rtt = observe_rtt
        self._wake = Event()
        self._runner = None
        self._stopping = False
        self._drain_until = 0.0
        self._notes: set[str] = set()  # problems of this connection already logged
        self._sock = None
        self._last_problem: str | None = None
        self._last_received = 0.0  # monotonic time of the last packet from the upstream
        self._tls_context = _client_context(config) if config.tls is not None else None
        self.name = config.name

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._runner = gevent.spawn(self._run)

    def stop(self, timeout: float) -> None:
        """Within `timeout`: if connected, send what is queued and wait for its acks, then
        DISCONNECT; close and end the runner."""
        self._stopping = True
        self._drain_until = time.monotonic() + timeout * 0.8
        self._wake.set()
        if self._runner is not None:
            self._runner.join(timeout)
            self._runner.kill(block=True, timeout=1.0)
        self._close()

    def wake(self) -> None:
        """New entries are queued: let the writer look."""
        self._wake.set()

    # -- the runner ------------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            if attempt:
                self.stats.reconnects += 1
            try:
                self._connect_and_serve()
                attempt = 0  # it was up: start the backoff over
            except (OSError, MqttError, Refused, ConnectionLost, gevent.Timeout) as exc:
                self.stats.up = 0
                self._close()
                if self._stopping:
                    break
                self._problem(_describe(exc))
            except Exception:  # a bug, not the network: show it, and keep the bridge alive
                self.stats.up = 0
                self._close()
                log.exception("bridge %s: unexpected error; reconnecting", self.name)
            delay = backoff_delay(attempt, self.config.backoff_min, self.config.backoff_max)
            attempt += 1
            if not self._stopping:
                log.debug("bridge %s: next connection attempt in %.2fs", self.name, delay)
                self._wake.clear()
                gevent.sleep(delay)
        self.stats.up = 0

    def _note(self, key: str, text: str) -> None:
        """A problem that does not end the connection: a warning once per kind per connection."""
        if key not in self._notes:
            self._notes.add(key)
            log.warning("bridge %s: %s", self.name, text)

    def _problem(self, text: str) -> None:
        if text != self._last_problem:
            log.warning("bridge %s: %s:%d: %s; retrying with backoff", self.name, self.config.host,
                        self.config.port, text)
            self._last_problem = text
        else:
            log.debug("bridge %s: %s (again)", self.name, text)

    def _connect_and_serve(self) -> None:
        config = self.config
        session = UpstreamSession(config, self._max_packet_size)
        decoder = MqttDecoder(session.receive_limit, protocol_version=config.proto_ver)
        with gevent.Timeout(config.connect_timeout, ConnectionLost(
                f"no CONNACK within {config.connect_timeout:g}s")):
            sock = self._sock = socket.create_connection((config.host, config.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls_context is not None:
                sock = self._sock = self._tls_context.wrap_socket(sock, server_hostname=config.host)
            sock.sendall(encode(session.connect_packet(), config.proto_ver))
            packets: list = []
            while not packets:
                data = sock.recv(_READ_SIZE)
                if not data:
                    raise ConnectionLost("the upstream closed the connection before CONNACK")
                packets = decoder.feed(data)
            session.on_connack(packets[0])
        subscribe = session.subscribe_packet()
        if subscribe is not None:
            sock.sendall(encode(subscribe, config.proto_ver))
        log.info("bridge %s: connected to %s:%d (MQTT %s%s)", self.name, config.host, config.port,
                 {3: "3.1", 4: "3.1.1", 5: "5.0"}[config.proto_ver],
                 ", TLS" if self._tls_context is not None else "")
        self._last_problem = None
        self._notes.clear()
        self.stats.up = 1
        self.queue.rewind()  # replay every unacknowledged message, in order
        control: list[bytes] = []
        reader = gevent.spawn(self._read, sock, decoder, session, control, packets[1:])
        reader.link(lambda _: self._wake.set())
        try:
            self._write(sock, session, control, reader)
        finally:
            reader.kill(block=False)

    def _read(self, sock, decoder: MqttDecoder, session: UpstreamSession, control: list, early: list):
        """Until EOF: decode, hand to the session, queue what it answers for the writer.
        Returns (never raises, so gevent prints no traceback) the error that ended it."""
        try:
            self._read_packets(sock, decoder, session, control, early)
        except (OSError, MqttError, ConnectionLost) as exc:
            return exc
        return ConnectionLost("the reader stopped")

    def _read_packets(self, sock, decoder: MqttDecoder, session: UpstreamSession, control: list,
                      early: list) -> None:
        version = self.config.proto_ver
        stats = self.stats
        pending = early
        while True:
            now = time.monotonic()
            acked = False
            for packet in pending:
                replies, incoming, finished, problem = session.on_packet(packet, now)
                for reply in replies:
                    control.append(encode(reply, version))
                if incoming is not None:
                    self._deliver(incoming)
                if finished is not None:
                    entry, rtt, refused = finished
                    acked = True
                    self.queue.acknowledged(entry.seq)
                    if refused is None:
                        stats.forwarded += 1
                        self._observe_rtt(rtt)
                    else:
                        stats.dropped["refused"] += 1
                        self._note(f"refused {refused}", f"the upstream refused a message (first on "
                                   f"{entry.topic!r}): {reason_text(refused)}; such messages are dropped and counted")
                if problem is not None:
                    self._note(problem, problem)
            if pending:
                self._last_received = now
            if control or acked:
                self._wake.set()
            data = sock.recv(_READ_SIZE)
            if not data:
                raise ConnectionLost("the upstream closed the connection")
            pending = decoder.feed(data)

    def _write(self, sock, session: UpstreamSession, control: list, reader) -> None:
        config = self.config
        version = config.proto_ver
        queue, stats, wake = self.queue, self.stats, self._wake
        keepalive = config.keepalive
        last_sent = self._last_received = time.monotonic()
        next_resend = last_sent + config.resend_interval
        while not self._stopping or (len(queue) and time.monotonic() < self._drain_until):
            if reader.dead:
                raise reader.value  # the reader's error: EOF, a socket error, a bad packet
            wake.clear()
            chunks = control[:]
            del control[:]
            now = time.monotonic()
            sent_publishes = 0
            while sent_publishes < _WRITE_BATCH and session.can_send():
                entry = queue.next_unsent()
                if entry is None:
                    break
                if session.too_large(entry):
                    queue.acknowledged(entry.seq)
                    stats.dropped["too_large"] += 1
                    continue
                chunks.append(encode(session.publish_packet(entry, now), version))
                sent_publishes += 1
                if entry.qos == 0:
                    queue.acknowledged(entry.seq)
                    stats.forwarded += 1
            if now >= next_resend:
                next_resend = now + config.resend_interval
                chunks.extend(encode(p, version) for p in session.due_for_resend(now, config.resend_wait))
            if keepalive and now - last_sent >= keepalive:
                chunks.append(encode(session.ping_packet(), version))
            if keepalive and now - self._last_received > keepalive * 1.5:
                raise ConnectionLost(f"no packet from the upstream for {keepalive * 1.5:g}s (keepalive)")
            if chunks:
                sock.sendall(b"".join(chunks))
                last_sent = now
                if sent_publishes == _WRITE_BATCH:
                    gevent.idle()  # let the reader and local clients run between batches
                continue
            timeout = min(next_resend - now, keepalive - (now - last_sent) if keepalive else 3600.0)
            if self._stopping:
                timeout = min(timeout, self._drain_until - now)
            wake.wait(max(timeout, 0.01))
        # Stopping: say goodbye so the upstream does not publish our will.
        sock.sendall(encode(Disconnect(), version))

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def _client_context(config: BridgeConfig) -> ssl.SSLContext:
    tls = config.tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.verify_peer:
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        if tls.cacertfile:
            context.load_verify_locations(cafile=tls.cacertfile)
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.certfile:
        context.load_cert_chain(tls.certfile, tls.keyfile, password=tls.key_password)
    return context


def _describe(exc: BaseException) -> str:
    """One line for the log: what went wrong, never a traceback."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the upstream's certificate was refused: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, Refused):
        return f"the upstream refused the connection: {exc}"
    if isinstance(exc, MqttError):
        return f"bad packet from the upstream: {exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__
