"""The chart's config watcher (configReload.mode = watch), run as the chart runs it, `python -c`.

Its peer is a real HTTP server on loopback standing in for the broker's /api/v4/reload: it accepts
the credentials the broker currently runs with and, on a reload, takes the new ones from the
file, as a broker that re-reads its config does. Files change the way the kubelet changes a
mounted ConfigMap or Secret: new content renamed into place.
"""

from __future__ import annotations

import base64
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .tooling import CHART, REPO

pytestmark = pytest.mark.static

WATCHER = (CHART / "files" / "config_watcher.py").read_text()


class ReloadEndpoint(ThreadingHTTPServer):
    def __init__(self, secret_file, status: int = 200, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.secret_file, self.status = secret_file, status
        self.accepted = self.credentials()
        self.requests: queue.Queue = queue.Queue()

    def credentials(self) -> str:
        values = dict(line.split(" = ") for line in self.secret_file.read_text().splitlines())
        return f"{values['username'].strip(chr(34))}:{values['password'].strip(chr(34))}"

    def next_request(self, timeout: float = 10):
        try:
            return self.requests.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("the watcher sent no request")


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        sent = base64.b64decode(self.headers.get("Authorization", "Basic ").split()[1]).decode()
        ok = sent == self.server.accepted
        self.server.requests.put((self.path, sent, ok))
        status = self.server.status if ok else 401
        if ok and status == 200:
            self.server.accepted = self.server.credentials()  # what a reload applies
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def replace(path, text: str) -> None:
    """Write `text` to `path` atomically, as the kubelet swaps a volume's files."""
    staged = path.with_name(f".{path.name}.new")
    staged.write_text(text)
    os.replace(staged, path)


@pytest.fixture
def pod(tmp_path):
    """The config and secret directories, and a function that starts the watcher on them."""
    etc, secret = tmp_path / "nanomq", tmp_path / "nanomq-secret"
    etc.mkdir()
    secret.mkdir()
    (secret / "http_server.conf").write_text('username = "admin"\npassword = "first"\n')
    processes = []

    def start(endpoint: ReloadEndpoint) -> subprocess.Popen:
        (etc / "nanomq.conf").write_text(
            f'http_server {{\n  port = {endpoint.server_address[1]}\n'
            f'  include required("{secret}/http_server.conf")\n}}\nlog.level = warn\n')
        env = {**os.environ, "PYTHONPATH": str(REPO), "NANOMQ_CONF_PATH": str(etc / "nanomq.conf"),
               "WATCH_DIRS": f"{etc}:{secret}:{tmp_path / 'absent'}", "WATCH_INTERVAL": "0.1"}
        process = subprocess.Popen([sys.executable, "-c", WATCHER], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        processes.append(process)
        assert "config-watcher: watching" in process.stdout.readline()
        return process

    yield etc, secret, start
    for process in processes:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def serve():
    servers = []

    def serve(endpoint: ReloadEndpoint) -> ReloadEndpoint:
        threading.Thread(target=endpoint.serve_forever, daemon=True).start()
        servers.append(endpoint)
        return endpoint

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_changed_config_or_secret_asks_the_broker_to_reload_with_the_credentials_it_runs_with(pod, serve):
    etc, secret, start = pod
    endpoint = serve(ReloadEndpoint(secret / "http_server.conf"))
    watcher = start(endpoint)
    assert endpoint.requests.empty()  # nothing changed yet

    replace(etc / "nanomq.conf", (etc / "nanomq.conf").read_text().replace("warn", "info"))
    assert endpoint.next_request() == ("/api/v4/reload", "admin:first", True)
    assert "the broker reloaded them (200)" in watcher.stdout.readline()

    # A new password: the broker still runs with the old one when asked, and the new one after.
    replace(secret / "http_server.conf", 'username = "admin"\npassword = "second"\n')
    assert endpoint.next_request() == ("/api/v4/reload", "admin:first", True)
    watcher.stdout.readline()
    replace(etc / "nanomq.conf", (etc / "nanomq.conf").read_text().replace("info", "debug"))
    assert endpoint.next_request() == ("/api/v4/reload", "admin:second", True)
    time.sleep(0.5)
    assert endpoint.requests.empty()  # one request per change

    watcher.send_signal(signal.SIGTERM)
    assert watcher.wait(timeout=5) == 0


@pytest.mark.parametrize("status", [404, 405])
def test_a_broker_without_reload_gets_one_request_and_a_clear_line(pod, serve, status):
    etc, secret, start = pod
    endpoint = serve(ReloadEndpoint(secret / "http_server.conf", status=status))
    watcher = start(endpoint)
    replace(etc / "nanomq.conf", (etc / "nanomq.conf").read_text() + "# changed\n")
    assert endpoint.next_request() == ("/api/v4/reload", "admin:first", True)
    assert "no /api/v4/reload; restart the pod" in watcher.stdout.readline()
    time.sleep(0.5)
    assert endpoint.requests.empty()


def test_an_unreachable_broker_is_asked_again_until_it_answers(pod, serve):
    etc, secret, start = pod
    closed = ReloadEndpoint(secret / "http_server.conf")  # a port nobody listens on (a restarting broker)
    closed.server_close()
    watcher = start(closed)
    replace(etc / "nanomq.conf", (etc / "nanomq.conf").read_text() + "# changed\n")
    assert "broker not reachable" in watcher.stdout.readline()
    assert "broker not reachable" in watcher.stdout.readline()  # and again at the next look
    endpoint = serve(ReloadEndpoint(secret / "http_server.conf", port=closed.server_address[1]))
    assert endpoint.next_request() == ("/api/v4/reload", "admin:first", True)
