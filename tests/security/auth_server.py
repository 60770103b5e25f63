"""A real HTTP auth service for the http_auth tests (NanoMQ/EMQX protocol): records every
request's form parameters and answers by path."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


class AuthServer:
    """/auth: 200 if password is "good" (user "slow" first waits for `release`), else 403.
    /super: 200 for username "root". /acl: 200 if the topic starts with "open/", else 403.
    /ignore: 200 "ignore". /error: 500."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.slow_arrived = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self._answer(dict(parse_qsl(urlsplit(self.path).query)))

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if "json" in self.headers.get("Content-Type", ""):
                    params = json.loads(body)
                else:
                    params = dict(parse_qsl(body, keep_blank_values=True))
                self._answer(params)

            def _answer(self, params):
                path = urlsplit(self.path).path
                server.requests.append((path, params))
                status, body = 403, b""
                if path == "/auth":
                    if params.get("username") == "slow":
                        server.slow_arrived.set()
                        server.release.wait(30)
                    status = 200 if params.get("password") == "good" else 403
                elif path == "/super":
                    status = 200 if params.get("username") == "root" else 403
                elif path == "/acl":
                    status = 200 if params.get("topic", "").startswith("open/") else 403
                elif path == "/ignore":
                    status, body = 200, b"ignore"
                elif path == "/error":
                    status = 500
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def close(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
