"""Reads one HTTP/1.1 response to a webhook POST: just what the stage needs to decide
(status, keep-alive, Retry-After), with the whole body consumed so the connection can carry
the next request. No I/O of its own: it pulls bytes through the `recv` it is given.
"""

from __future__ import annotations

MAX_HEAD = 64 * 1024  # status line and headers; a receiver sending more is broken
RECV_SIZE = 65536


class BadResponse(Exception):
    """The peer's bytes are not an HTTP/1.x response (or it closed mid-response)."""


class Response:
    __slots__ = ("status", "keep_alive", "retry_after")

    def __init__(self, status: int, keep_alive: bool, retry_after: float | None) -> None:
        self.status = status
        self.keep_alive = keep_alive
        self.retry_after = retry_after


def read_response(recv) -> Response:
    """Read one final (non-1xx) response through `recv(n) -> bytes`; raises BadResponse."""
    buffer = b""
    while True:
        head, buffer = _read_head(recv, buffer)
        status, version_11, headers = _parse_head(head)
        if not 100 <= status < 200:
            break
    connection = headers.get(b"connection", b"").lower()
    keep_alive = b"close" not in connection if version_11 else b"keep-alive" in connection
    if status in (204, 304):
        body_done = True
    elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        buffer, body_done = _skip_chunked(recv, buffer), True
    elif b"content-length" in headers:
        try:
            length = int(headers[b"content-length"])
        except ValueError:
            raise BadResponse("bad Content-Length") from None
        buffer, body_done = _skip(recv, buffer, length), True
    else:
        body_done = False  # the body runs until the server closes: never reuse this connection
    if not body_done or buffer:
        keep_alive = False  # unread or unexpected bytes: the connection is in an unknown state
    return Response(status, keep_alive, _retry_after(headers.get(b"retry-after")))


def _more(recv) -> bytes:
    data = recv(RECV_SIZE)
    if not data:
        raise BadResponse("connection closed before the response was complete")
    return data


def _read_head(recv, buffer: bytes) -> tuple[bytes, bytes]:
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            return buffer[:end], buffer[end + 4:]
        if len(buffer) > MAX_HEAD:
            raise BadResponse("response head too large")
        buffer += _more(recv)


def _parse_head(head: bytes) -> tuple[int, bool, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise BadResponse(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), parts[0] != b"HTTP/1.0", headers


def _skip(recv, buffer: bytes, length: int) -> bytes:
    """Consume `length` body bytes; return what follows them."""
    while len(buffer) < length:
        buffer += _more(recv)
    return buffer[length:]


def _skip_chunked(recv, buffer: bytes) -> bytes:
    while True:
        while b"\r\n" not in buffer:
            buffer += _more(recv)
        size_line, _, buffer = buffer.partition(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            raise BadResponse("bad chunk size") from None
        if size == 0:
            # trailers, if any, end with an empty line
            while True:
                while b"\r\n" not in buffer:
                    buffer += _more(recv)
                line, _, buffer = buffer.partition(b"\r\n")
                if not line:
                    return buffer
        buffer = _skip(recv, buffer, size + 2)  # the chunk and its CRLF


def _retry_after(value: bytes | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from webhook receivers, and backoff covers it
