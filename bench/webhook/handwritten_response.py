"""The hand-written reader the stage used before httptools, kept as the baseline of
bench/webhook/parsers.py (not used by the appliance).

Reads one HTTP/1.1 response to a webhook POST: just what the stage needs to decide
(status, keep-alive, Retry-After). No I/O of its own: it pulls bytes through the `recv` it is
given (which enforces the request's deadline).

The body is drained, not kept: at most `MAX_DRAIN` bytes of it are read (in `RECV_SIZE`
pieces, never joined), so the connection can carry the next request; a longer body is left
unread and the connection is closed instead. Interim 1xx answers are skipped; chunked,
Content-Length and close-delimited bodies are understood.
"""

from __future__ import annotations

# The same limits and result types as the stage's reader, so the two are compared like for like.
from appliance.webhook.response import MAX_DRAIN, MAX_HEAD, RECV_SIZE, BadResponse, Response


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
        buffer, body_done = _drain_chunked(recv, buffer)
    elif b"content-length" in headers:
        try:
            length = int(headers[b"content-length"])
        except ValueError:
            raise BadResponse("bad Content-Length") from None
        if length < 0:
            raise BadResponse("bad Content-Length")
        buffer, body_done = _drain(recv, buffer, length, MAX_DRAIN)
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


def _drain(recv, buffer: bytes, length: int, budget: int) -> tuple[bytes, bool]:
    """Consume `length` body bytes if that is within `budget`; returns (what follows them,
    whether they were all consumed). The pieces read are dropped, never joined."""
    if length > budget:
        return buffer, False
    while len(buffer) < length:
        length -= len(buffer)
        buffer = _more(recv)
    return buffer[length:], True


def _line(recv, buffer: bytes) -> tuple[bytes, bytes]:
    while True:
        end = buffer.find(b"\r\n")
        if end >= 0:
            return buffer[:end], buffer[end + 2:]
        if len(buffer) > MAX_HEAD:
            raise BadResponse("chunk line too long")
        buffer += _more(recv)


def _drain_chunked(recv, buffer: bytes) -> tuple[bytes, bool]:
    budget = MAX_DRAIN
    while True:
        size_line, buffer = _line(recv, buffer)
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            raise BadResponse("bad chunk size") from None
        if size < 0:
            raise BadResponse("bad chunk size")
        if size == 0:
            while True:  # trailers, if any, end with an empty line
                line, buffer = _line(recv, buffer)
                if not line:
                    return buffer, True
        buffer, complete = _drain(recv, buffer, size + 2, budget)  # the chunk and its CRLF
        if not complete:
            return buffer, False
        budget -= size


def _retry_after(value: bytes | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from webhook receivers, and backoff covers it
