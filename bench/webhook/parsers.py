"""Response readers compared: the hand-written reader the stage had (handwritten_response.py) against httptools
(llhttp, C) and h11 (pure Python), each reading the same answers the way the stage does: one
response per request on a kept-alive connection, the body drained.

    python -m bench.webhook.parsers [--n 200000]     (h11 is installed for the WebSocket listener)

Prints microseconds per response for each reader and each answer shape, and the ratio of each
to ours. (Not a test: numbers depend on the machine; the ratios are what to read.)
"""

from __future__ import annotations

import argparse
import time

from appliance.webhook.response import ResponseReader

from .handwritten_response import read_response

ANSWERS = {
    "204 nginx": b"HTTP/1.1 204 No Content\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 08:00:00 GMT\r\n"
                 b"Connection: keep-alive\r\n\r\n",
    "200 length": b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
    "200 chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    "100 then 200": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
}


def ours(data: bytes, n: int) -> float:
    pieces = [data]
    recv = lambda _size: pieces.pop()  # noqa: E731
    started = time.perf_counter()
    for _ in range(n):
        pieces.append(data)
        response = read_response(recv)
    assert 200 <= response.status < 300 and response.keep_alive
    return time.perf_counter() - started


def stage_reader(data: bytes, n: int) -> float:
    """What the stage runs now: httptools behind `ResponseReader.read(recv)`, one reader per
    kept-alive connection."""
    pieces = [data]
    reader = ResponseReader()
    recv = lambda _size: pieces.pop()  # noqa: E731
    started = time.perf_counter()
    for _ in range(n):
        pieces.append(data)
        response = reader.read(recv)
    assert 200 <= response.status < 300 and response.keep_alive
    return time.perf_counter() - started


def with_httptools(data: bytes, n: int) -> float:
    import httptools

    class Reader:
        __slots__ = ("status", "done", "headers", "parser", "keep_alive")

        def __init__(self):
            self.parser = httptools.HttpResponseParser(self)
            self.done = False
            self.headers = []

        def on_header(self, name, value):
            self.headers.append((name, value))

        def on_headers_complete(self):
            self.keep_alive = self.parser.should_keep_alive()

        def on_message_complete(self):
            self.done = True

    reader = Reader()
    started = time.perf_counter()
    for _ in range(n):
        reader.done = False
        reader.headers.clear()
        reader.parser.feed_data(data)
        assert reader.done
        status = reader.parser.get_status_code()
    assert 200 <= status < 300 and reader.keep_alive
    return time.perf_counter() - started


def with_h11(data: bytes, n: int) -> float:
    import h11

    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(method="POST", target="/", headers=[("Host", "x"), ("Content-Length", "2")])
    started = time.perf_counter()
    for _ in range(n):
        conn.send(request)
        conn.send(h11.Data(data=b"{}"))
        conn.send(h11.EndOfMessage())
        conn.receive_data(data)
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
            if isinstance(event, h11.EndOfMessage):
                break
        conn.start_next_cycle()
    assert 200 <= status < 300
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    readers = {"hand-written": ours, "stage (httptools)": stage_reader, "httptools reused": with_httptools,
               "h11": with_h11}
    print(f"{'answer':<14}" + "".join(f"{name:>22}" for name in readers))
    for shape, data in ANSWERS.items():
        cells = []
        base = None
        for name, reader in readers.items():
            n = args.n // 10 if name == "h11" else args.n
            us = reader(data, n) / n * 1e6
            base = base or us
            cells.append(f"{us:8.2f} us ({us / base:4.2f}x)")
        print(f"{shape:<14}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
