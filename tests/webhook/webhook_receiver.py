"""A real HTTP server on loopback that records every webhook request as received and
answers as a test tells it to: a status, a delay, closing mid-request, or not listening."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    target: str  # path and query as sent
    version: str
    headers: list[tuple[str, str]]  # in the order sent, names as written
    body: bytes
    connection: int  # which TCP connection carried it (keep-alive shows as repeats)
    at: float  # time.monotonic() when it arrived

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    receiver: Receiver

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without this, Nagle and delayed ACKs add 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_id = self.receiver._new_connection()

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        at = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Request(self.command, self.path, self.request_version, list(self.headers.items()), body,
                          self.connection_id, at)
        status, delay, close = self.receiver._arrived(request)
        if delay:
            time.sleep(delay)
        if close:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = b"" if status in (204, 304) else b"ok"  # a body, so an unread answer breaks keep-alive
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if self.receiver.connection_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.receiver._answered(request, status)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # every worker connects at once
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client closing its keep-alive connection is not news


class Receiver:
    """`Receiver()` listens on 127.0.0.1 (port 0 unless given); `url` is where to POST."""

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Request] = []
        self.answers: list[int | None] = []  # status sent per request; None: none (yet)
        self.status = 200
        self.delay = 0.0
        self.plan: list[tuple[int, float, bool]] = []  # (status, delay, close) for the next requests
        self.connections = 0
        self.connection_close = False  # answer with Connection: close
        self.active = 0  # requests received and not answered yet
        self.max_active = 0
        self._cond = threading.Condition()
        self._tls = tls
        self.port = port
        self._server = None
        self.start()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"receiver": self})
        server = _Server(("127.0.0.1", self.port), handler)
        if self._tls:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: new connections are refused until `start()`."""
        self._server.shutdown()
        self._server.server_close()

    def _new_connection(self) -> int:
        with self._cond:
            self.connections += 1
            return self.connections

    def _arrived(self, request: Request) -> tuple[int, float, bool]:
        """Record a request; returns how to answer it: (status, delay, close)."""
        with self._cond:
            self.requests.append(request)
            self.answers.append(None)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self._cond.notify_all()
            return self.plan.pop(0) if self.plan else (self.status, self.delay, False)

    def _answered(self, request: Request, status: int) -> None:
        with self._cond:
            self.answers[self.requests.index(request)] = status
            self.active -= 1
            self._cond.notify_all()

    def delivered(self) -> list[Request]:
        with self._cond:
            return [r for r, status in zip(self.requests, self.answers) if status is not None and status < 300]

    def wait_for(self, predicate, timeout: float = 20.0) -> None:
        """Wait until `predicate(receiver)` holds; fail the test if it does not in time."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"receiver: condition not met in {timeout} s "
                                     f"({len(self.requests)} requests so far)")

    def wait_delivered(self, count: int, timeout: float = 20.0) -> list[Request]:
        self.wait_for(lambda r: len(r.delivered()) >= count, timeout)
        return self.delivered()
