"""Fixtures for the metrics tests: the HTTP server in-process over a broker test double,
a webhook endpoint, a real Prometheus, and an HTTP client that works with both.

The real broker (`broker`, `broker_factory`, `mqtt`) comes from tests/conftest.py. The
in-process server runs on gevent's hub in this (unpatched) thread, so every HTTP request is
made from one of gevent's native worker threads while the test waits on the hub.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gevent
import pytest

from appliance.broker.stats import BrokerStats
from appliance.config.model import HttpServerConfig
from appliance.metrics import HttpServer, create_registry


class BrokerReadDouble:
    """Test double of the broker's read API for metrics (stats and counts); no network path."""

    def __init__(self) -> None:
        self.stats = BrokerStats()
        self.connections = self.sessions = self.subscriptions = 0
        self.topics = self.retained = self.inflight = 0
        self.broken = False  # makes every count raise, to exercise the 500 path

    def _read(self, value: int) -> int:
        if self.broken:
            raise RuntimeError("broker read failed")
        return value

    def connection_count(self) -> int:
        return self._read(self.connections)

    def session_count(self) -> int:
        return self._read(self.sessions)

    def subscription_count(self) -> int:
        return self._read(self.subscriptions)

    def topic_count(self) -> int:
        return self._read(self.topics)

    def retained_count(self) -> int:
        return self._read(self.retained)

    def inflight_count(self) -> int:
        return self._read(self.inflight)


class StatusDouble:
    """What the application reports to the probes."""

    def __init__(self) -> None:
        self.is_healthy = True
        self.is_ready = True

    def healthy(self) -> bool:
        return self.is_healthy

    def ready(self) -> bool:
        return self.is_ready


@dataclass
class Response:
    status: int
    headers: object  # http.client.HTTPMessage: case-insensitive .get()
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _fetch_blocking(url: str, headers: dict) -> Response:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers, error.read())


def fetch(url: str, headers: dict | None = None) -> Response:
    """GET `url` from a native thread while this thread's hub keeps serving."""
    return gevent.get_hub().threadpool.apply(_fetch_blocking, (url, headers or {}))


@dataclass
class RunningServer:
    server: HttpServer
    broker: BrokerReadDouble
    status: StatusDouble
    registry: object

    @property
    def url(self) -> str:
        host, port = self.server.address
        return f"http://{host}:{port}"

    def get(self, path: str, headers: dict | None = None) -> Response:
        return fetch(self.url + path, headers)


@pytest.fixture
def broker_double() -> BrokerReadDouble:
    return BrokerReadDouble()


@pytest.fixture
def start_server():
    """Starts an HttpServer on 127.0.0.1, port 0, with the given HttpServerConfig fields."""
    started = []

    def start(**config) -> RunningServer:
        broker, status = BrokerReadDouble(), StatusDouble()
        registry = create_registry(broker)
        server = HttpServer(HttpServerConfig(**{"bind": "127.0.0.1", "port": 0, **config}), registry, broker, status)
        server.start()
        started.append(server)
        return RunningServer(server, broker, status, registry)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server) -> RunningServer:
    """The HTTP server with NanoMQ's default credentials (admin / public, basic auth)."""
    return start_server()


@pytest.fixture(name="fetch")
def fetch_fixture():
    """GET any URL without stalling the hub that serves the in-process server."""
    return fetch


@pytest.fixture(name="basic")
def basic_fixture():
    """Builds an `Authorization: Basic` header value."""
    return basic


@pytest.fixture
def promtool() -> str:
    return _require_tool("promtool")


@pytest.fixture
def prometheus() -> str:
    return _require_tool("prometheus")


@pytest.fixture
def start_prometheus(prometheus, tmp_path):
    """`start_prometheus(http_port, password)`: a real Prometheus on loopback scraping the
    appliance every second, /metrics as job `appliance` and /api/v4/prometheus (basic auth
    admin / `password`) as job `nanomq`; returns its base URL. Stopped after the test."""
    processes = []

    def start(http_port: int, password: str = "public") -> str:
        target = f"127.0.0.1:{http_port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "appliance", "static_configs": [{"targets": [target]}]},
                {"job_name": "nanomq", "metrics_path": "/api/v4/prometheus",
                 "basic_auth": {"username": "admin", "password": password},
                 "static_configs": [{"targets": [target]}]},
            ],
        }
        config_file = tmp_path / "prometheus.yml"
        config_file.write_text(json.dumps(config))  # JSON is YAML
        port = _free_loopback_port()
        with (tmp_path / "prometheus.log").open("wb") as log_file:
            processes.append(subprocess.Popen(
                [prometheus, f"--config.file={config_file}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdout=log_file, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(url, processes[-1])
        return url

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_ready(url: str, process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Prometheus answers 503 until its storage is open; queries before that are refused."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if fetch(url + "/-/ready").status == 200:
                return
        except OSError:
            pass  # not listening yet
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"Prometheus at {url} never became ready (exit code {process.poll()})")
        time.sleep(0.05)


def _free_loopback_port() -> int:
    # Prometheus logs the address it was given, not the one bound: choose the port here.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _require_tool(name: str) -> str:
    """Path of a Debian `prometheus` package binary; CI must have it, elsewhere we skip."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: apt-get install --no-install-recommends prometheus"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class HookReceiver:
    """A real HTTP endpoint for webhook POSTs on 127.0.0.1: answers `status`, counts bodies."""

    def __init__(self) -> None:
        self.status = 200
        self.received = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._changed:
                    receiver.received += 1
                    receiver._changed.notify_all()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.received >= count, timeout)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hook_receiver():
    receiver = HookReceiver()
    yield receiver
    receiver.stop()
