"""Reads one HTTP/1.1 response to a webhook POST: just what the stage needs to decide
(status, keep-alive, Retry-After). No I/O of its own: it pulls bytes through the `recv` it is
given (which enforces the request's deadline).

Parsing is httptools (llhttp, the parser of Node.js): measured about 5x less CPU per answer
than the hand-written reader it replaced (bench/webhook/parsers.py), and it knows HTTP's
corner cases. Interim 1xx answers are skipped; Content-Length, chunked and close-delimited
bodies are understood. The body is drained, not kept: at most `MAX_DRAIN` bytes of it are
read, so the connection can carry the next request; a longer body is left unread and the
connection is closed instead, as it is after a close-delimited body or stray bytes.
"""

from __future__ import annotations

import httptools

MAX_HEAD = 64 * 1024  # status line and headers; a receiver sending more is broken
MAX_DRAIN = 64 * 1024  # body bytes read to keep a connection; beyond, it is closed
RECV_SIZE = 65536


class BadResponse(Exception):
    """The peer's bytes are not an HTTP/1.x response (or it closed mid-response)."""


class Response:
    __slots__ = ("status", "keep_alive", "retry_after")

    def __init__(self, status: int, keep_alive: bool, retry_after: float | None) -> None:
        self.status = status
        self.keep_alive = keep_alive
        self.retry_after = retry_after


class ResponseReader:
    """Reads the answers on one connection, one per `read()`; the parser (httptools' callbacks
    below) carries over from one answer to the next, as keep-alive does. After an answer that
    is not `keep_alive`, the connection is closed and so is this reader: make a new one."""

    __slots__ = ("parser", "status", "keep_alive", "retry_after", "framed", "head_done", "complete",
                 "after", "drained", "length", "_framing")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.keep_alive = False
        self.retry_after = None
        self.framed = True  # the body has a length (or none): not close-delimited
        self.head_done = False  # the final answer's head is parsed
        self.complete = False  # the final answer is parsed whole
        self.after = False  # bytes after it (the connection's state is unknown then)
        self.drained = 0
        self.length = 0  # Content-Length, if any
        self._framing = False

    def read(self, recv) -> Response:
        """Read one final (non-1xx) response through `recv(n) -> bytes`; raises BadResponse."""
        self._reset()
        parser = self.parser
        received = 0
        while True:
            data = recv(RECV_SIZE)
            if not data:
                raise BadResponse("connection closed before the response was complete")
            received += len(data)
            try:
                parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                return self._answer(False)
            except httptools.HttpParserError as exc:
                if self.complete:  # stray bytes after the answer: it stands, the connection goes
                    return self._answer(False)
                raise BadResponse(f"not an HTTP/1.x response: {exc}") from None
            if self.complete:
                return self._answer(self.keep_alive and not self.after)
            if self.head_done and (not self.framed or self.drained > MAX_DRAIN or self.length > MAX_DRAIN):
                return self._answer(False)  # close-delimited, or more body than worth reading
            if not self.head_done and received > MAX_HEAD:
                raise BadResponse("response head too large")

    def _answer(self, keep_alive: bool) -> Response:
        return Response(self.status, keep_alive, _retry_after(self.retry_after))

    # -- httptools' callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._framing = False
        if self.complete:
            self.after = True

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"retry-after":
            self.retry_after = value
        elif name == b"content-length":
            self._framing = True
            self.length = int(value) if value.strip().isdigit() else 0  # (llhttp refuses bad ones)
        elif name == b"transfer-encoding":
            self._framing = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            return  # interim: the final answer follows
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()  # (only valid here)
        self.framed = self._framing or status in (204, 304)
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.drained += len(body)

    def on_message_complete(self) -> None:
        if self.head_done:
            self.complete = True


def read_response(recv) -> Response:
    """One answer on a fresh connection (see ResponseReader)."""
    return ResponseReader().read(recv)


def _retry_after(value: bytes | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from webhook receivers, and backoff covers it
