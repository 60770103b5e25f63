"""Hostile endpoint answers (a real socket server that answers badly on purpose): a huge body is
not read into memory (the connection is closed beyond a cap), and a dripping answer cannot keep
a request alive past cancel_timeout, which is a deadline for the whole request."""

from __future__ import annotations

import socket
import threading
import time

from stage_process import sample


class RawServer:
    """Accepts connections, reads one request head and body, then runs `answer(conn)`."""

    def __init__(self, answer) -> None:
        self._answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.closed_after: list[float] = []  # seconds from the request to the client's close
        self.sent: list[int] = []  # body bytes written before the client went away
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += conn.recv(65536)
        started = time.monotonic()
        sent = self._answer(conn)
        self.sent.append(sent)
        self.closed_after.append(time.monotonic() - started)
        conn.close()

    def close(self) -> None:
        self.sock.close()


def huge_body(conn: socket.socket) -> int:
    size = 48 * 1024 * 1024
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    piece, sent = b"x" * 65536, 0
    try:
        while sent < size:
            conn.sendall(piece)
            sent += len(piece)
        conn.settimeout(10)
        conn.recv(1)  # wait for the client to close
    except OSError:
        pass  # the client closed instead of reading it all
    return sent


def drip(conn: socket.socket) -> int:
    sent = 0
    try:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"y" * 100:
            conn.sendall(bytes([byte]))
            sent += 1
            time.sleep(0.2)
    except OSError:
        pass
    return sent


def test_a_48_mb_answer_is_not_read_the_connection_is_closed_and_the_event_delivered(start_stage):
    server = RawServer(huge_body)
    stage = start_stage(server.url, pool_size=1)
    stage.publish(None, {"topic": "t", "payload": "x", "publisher_id": "p"}, count=3)
    metrics = stage.wait_metrics(lambda m: sample(m, "appliance_webhook_requests_total", event="message_publish",
                                                  outcome="delivered", reason="") == 3, timeout=30)
    assert len(server.sent) >= 2
    assert all(sent < 16 * 1024 * 1024 for sent in server.sent)  # the client stopped reading early
    assert not any(value for (name, _), value in metrics.items() if name == "appliance_webhook_events_dropped_total")
    server.close()


def test_a_dripping_answer_times_out_at_cancel_timeout_for_the_whole_request(start_stage):
    server = RawServer(drip)  # 140 bytes at 5 per second: 28 s to answer, each byte well within 1 s
    stage = start_stage(server.url, pool_size=1, cancel_timeout=1.0, retry={"max_attempts": 1})
    stage.publish(None, {"topic": "t", "payload": "x", "publisher_id": "p"})
    metrics = stage.wait_metrics(lambda m: sample(m, "appliance_webhook_events_dropped_total",
                                                  reason="retries_exhausted") == 1, timeout=20)
    assert sample(metrics, "appliance_webhook_requests_total", event="message_publish", outcome="failed",
                  reason="timeout") == 1
    deadline = time.monotonic() + 10
    while not server.closed_after and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.closed_after and server.closed_after[0] < 3.0  # not the 28 s the drip would take
    server.close()
