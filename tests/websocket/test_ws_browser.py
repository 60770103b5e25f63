"""A real browser: headless Chromium loads a page (served by this test) that uses MQTT.js
to connect to the broker's ws listener, subscribe, publish to itself and to a TCP client
that answers; the page POSTs what it saw back here, and a screenshot of it is kept.

scripts/test.sh installs Chromium (Debian's package) and MQTT.js (npm `mqtt`, into
build/browser/); no CDN is involved. The screenshot goes to $ARTIFACTS_DIR (default
build/artifacts/) and its path is printed in the test summary.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import ROOT, TIMEOUT
from ws_helpers import ws_listener

PAGE = Path(__file__).parent / "browser" / "index.html"
MQTT_JS = ROOT / "build" / "browser" / "node_modules" / "mqtt" / "dist" / "mqtt.min.js"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=900,420", "--hide-scrollbars")


class PageServer:
    """Serves the page and MQTT.js on 127.0.0.1:0, takes the page's result, and holds the
    page's one image until then (so the browser's load event waits for the round trips)."""

    def __init__(self) -> None:
        self.results: queue.Queue = queue.Queue()
        self.done = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/":
                    self._send(200, "text/html", PAGE.read_bytes())
                elif path == "/mqtt.min.js":
                    self._send(200, "application/javascript", MQTT_JS.read_bytes())
                elif path == "/hold-until-done":
                    server.done.wait(TIMEOUT)
                    self._send(204, "image/gif", b"")
                else:
                    self._send(404, "text/plain", b"not here")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.results.put(json.loads(body))
                server.done.set()
                self._send(204, "text/plain", b"")

            def _send(self, status, content_type, body):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.done.set()
        self.http.shutdown()
        self.http.server_close()


def _artifact(name: str) -> Path:
    directory = Path(os.environ.get("ARTIFACTS_DIR", ROOT / "build" / "artifacts"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


def test_mqtt_js_in_chromium_round_trips_over_the_ws_listener(broker_factory, mqtt, tmp_path, request):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: scripts/test.sh installs it (Debian package chromium)"
    assert MQTT_JS.is_file(), f"{MQTT_JS} is missing: scripts/test.sh installs MQTT.js (npm mqtt)"
    broker = broker_factory(ws_listener(), listeners=2)
    nonce = uuid.uuid4().hex[:12]

    # The TCP side: answers the page's question, so messages cross between transports.
    device = mqtt(broker.mqtt_ports["tcp"], "tcp-device")
    device.connect()
    device.subscribe("browser/out", 1)

    def answer():
        message = device.expect_message(timeout=3 * TIMEOUT)
        device.client.publish("browser/in", message.payload.replace(b"ask-", b"reply-"), 1)
        asked.put(message.payload)

    asked: queue.Queue = queue.Queue()
    threading.Thread(target=answer, daemon=True).start()

    pages = PageServer()
    screenshot = _artifact("websocket-browser.png")
    screenshot.unlink(missing_ok=True)
    url = (f"http://127.0.0.1:{pages.port}/?broker=ws://127.0.0.1:{broker.mqtt_ports['ws']}/mqtt"
           f"&nonce={nonce}")
    try:
        run = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
             f"--screenshot={screenshot}", url],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=6 * TIMEOUT)
        result = pages.results.get(timeout=TIMEOUT)
    finally:
        pages.close()

    assert result == {"connected": True, "echo": f"echo-{nonce}", "reply": f"reply-{nonce}", "error": None,
                      "elapsed_ms": result.get("elapsed_ms")}, run.stderr[-2000:]
    assert asked.get(timeout=TIMEOUT) == f"ask-{nonce}".encode()
    assert run.returncode == 0, run.stderr[-2000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 1000, "no screenshot was written"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"browser screenshot: {screenshot}")
