"""POSTs bodies to the configured URL over keep-alive connections and says how each went.

urllib3 owns the connections: its pool (maxsize = pool_size) opens them, with the TLS
settings and timeouts, and takes them back. Each delivery worker holds one for its whole
life and writes requests on it itself: the request head is built once, so a POST costs one
`send` and a small response read (`response.py`). Measured on loopback, that is about a
sixth of the CPU of `urlopen`, whose per-request header objects and email-parser response
headers cap a gevent process at 2-3k POST/s (see bench/webhook/).
"""

from __future__ import annotations

import ssl
import time

import urllib3
from urllib3.exceptions import NewConnectionError, SSLError

from appliance import __version__
from appliance.config.model import WebhookConfig

from .response import ResponseReader

USER_AGENT = f"appliance-webhook/{__version__}"
# Why an attempt failed (the `reason` label of the request metrics).
TIMEOUT, REFUSED, HTTP_4XX, HTTP_5XX, TLS, OTHER = "timeout", "refused", "http_4xx", "http_5xx", "tls", "other"

RETRYABLE_STATUS = frozenset({408, 429})
IDLE_CHECK_AFTER = 1.0  # seconds idle after which a kept connection is checked before reuse


class Attempt:
    """The result of one POST: `reason` is None when delivered; `retryable` says whether
    trying again could help; `retry_after` is the server's Retry-After in seconds, if any."""

    __slots__ = ("status", "reason", "retryable", "retry_after", "seconds", "detail")

    def __init__(self, status, reason, retryable, seconds, retry_after=None, detail=""):
        self.status = status
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.seconds = seconds
        self.detail = detail


def request_headers(config: WebhookConfig) -> list[tuple[str, str]]:
    """The configured headers as written, plus Content-Type: application/json and our
    User-Agent unless set."""
    headers = list(config.headers)
    names = {name.lower() for name, _ in headers}
    if "content-type" not in names:
        headers.append(("Content-Type", "application/json"))
    if "user-agent" not in names:
        headers.append(("User-Agent", USER_AGENT))
    for name, value in headers:
        if any(c in name + value for c in "\r\n\0") or not name or ":" in name:
            raise ValueError(f"webhook header {name!r} is not a valid HTTP header")
    return headers


def _tls_options(config: WebhookConfig) -> dict:
    tls = config.tls
    if not tls.verify_peer:
        options = {"cert_reqs": "CERT_NONE", "assert_hostname": False}
    else:
        options = {"cert_reqs": "CERT_REQUIRED", "ca_certs": tls.cacertfile}
    if tls.certfile:
        options.update(cert_file=tls.certfile, key_file=tls.keyfile, key_password=tls.key_password)
    return options


class Sender:
    """The connection pool to the webhook URL and the request head every POST starts with."""

    def __init__(self, config: WebhookConfig) -> None:
        url = urllib3.util.parse_url(config.url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"webhook url must be http:// or https:// with a host, not {config.url!r}")
        self.timeout = config.cancel_timeout
        options = _tls_options(config) if url.scheme == "https" else {}
        self._manager = urllib3.PoolManager(
            num_pools=1, maxsize=config.pool_size, block=True, retries=False,
            timeout=urllib3.Timeout(connect=config.cancel_timeout, read=config.cancel_timeout), **options)
        self._pool = self._manager.connection_from_url(config.url)
        default_port = 443 if url.scheme == "https" else 80
        host = url.host if url.port in (None, default_port) else f"{url.host}:{url.port}"
        lines = [f"POST {url.request_uri} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in request_headers(config)]
        self.head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    def channel(self) -> Channel:
        """One keep-alive connection for one worker (there are pool_size of them)."""
        return Channel(self, self._pool._get_conn())  # urllib3's pool hands out its connections

    def release(self, channel: Channel) -> None:
        self._pool._put_conn(channel.conn)

    def close(self) -> None:
        self._manager.clear()


class Channel:
    """POSTs on one connection, reconnecting when it has to."""

    def __init__(self, sender: Sender, conn) -> None:
        self._sender = sender
        self.conn = conn
        self._reader = ResponseReader()
        self._last_used = time.monotonic()

    def post(self, body: bytes) -> Attempt:
        """One request, answered within `cancel_timeout` from its start or failed as a timeout:
        connecting, sending and reading all count against that one deadline, so a server
        dripping its answer byte by byte cannot keep it alive."""
        conn, started = self.conn, time.perf_counter()
        deadline = time.monotonic() + self._sender.timeout

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete answer within cancel_timeout ({self._sender.timeout:g} s)")
            return left

        def recv(size: int) -> bytes:
            sock.settimeout(remaining())
            return sock.recv(size)

        try:
            if conn.sock is not None and started - self._last_used > IDLE_CHECK_AFTER and not conn.is_connected:
                conn.close()  # the server closed it while idle (keep-alive timeout)
            if conn.sock is None:
                conn.timeout = remaining()
                conn.connect()  # with the connect timeout, and TLS as configured
                self._reader = ResponseReader()
            sock = conn.sock
            sock.settimeout(remaining())
            request = b"%s%d\r\n\r\n%s" % (self._sender.head, len(body), body)
            sent = sock.send(request)  # one syscall: a POST nearly always fits the send buffer,
            if sent < len(request):    # and gevent's sendall costs its chunking and deadline setup
                sock.sendall(memoryview(request)[sent:])
            response = self._reader.read(recv)
        except Exception as exc:  # noqa: BLE001 - socket, TLS, protocol, even a bad key password:
            conn.close()          # all are a failed attempt, never a dead worker
            return Attempt(None, _reason(exc), True, time.perf_counter() - started, detail=str(exc) or repr(exc))
        finally:
            self._last_used = time.monotonic()
        if not response.keep_alive:
            conn.close()
        seconds = time.perf_counter() - started
        status = response.status
        if 200 <= status < 300:
            return Attempt(status, None, False, seconds)
        reason = HTTP_5XX if status >= 500 else HTTP_4XX if status >= 400 else OTHER
        retryable = status >= 500 or status in RETRYABLE_STATUS
        return Attempt(status, reason, retryable, seconds, response.retry_after, f"HTTP {status}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, NewConnectionError):  # also a ConnectTimeoutError in urllib3 2: first
        return REFUSED if isinstance(exc.__cause__, ConnectionRefusedError) else OTHER
    if isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
        return TIMEOUT
    if isinstance(exc, (ssl.SSLError, SSLError, ssl.CertificateError)):
        return TLS
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    return OTHER
