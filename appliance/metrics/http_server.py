"""The `http_server` block: Prometheus scrapes, container probes and NanoMQ's /api/v4 metrics.

gevent's WSGI server runs in the broker's process on greenlets of its own. Every handler
only reads numbers already in memory, so a scrape neither waits for MQTT work nor holds it up.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import sys

from gevent.pool import Pool
from gevent.pywsgi import LoggingLogAdapter, WSGIServer
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest, gzip_accepted

from ..logs import announce
from .auth import BasicAuth
from .nanomq import NanoMQMetrics

log = logging.getLogger(__name__)

API_ROOT = "/api/v4"
UNKNOWN_MISTAKE = 102  # NanoMQ's result code for an unknown path or method
MAX_CONCURRENT_REQUESTS = 64  # beyond this, connections wait in the listen backlog


class HttpServer:
    """Serves `/metrics`, `/healthz`, `/readyz` and `/api/v4/prometheus` and `/api/v4/metrics`.

    `status` answers the probes: `healthy()` (process up, listeners bound) and `ready()`.
    `api`, a WSGI app, answers every other authenticated `/api/v4` request (appliance.api)."""

    def __init__(self, config, registry, broker, status, api=None) -> None:
        self._config = config
        self._registry = registry
        self._status = status
        self._nanomq = NanoMQMetrics(broker)
        self._auth = BasicAuth(config.username, config.password) if config.auth_type == "basic" else None
        self._metrics_app = make_wsgi_app(registry)
        self._api_v4 = api
        self._server: WSGIServer | None = None

    def reconfigure(self, config) -> None:
        """A reload: credentials and auth_type apply from the next request; the address it
        listens on stays (a restart changes it)."""
        self._config = dataclasses.replace(config, bind=self._config.bind, port=self._config.port)
        self._auth = BasicAuth(config.username, config.password) if config.auth_type == "basic" else None

    def start(self) -> None:
        """Bind and start serving on the hub; returns at once."""
        self._server = WSGIServer(
            (self._config.bind, self._config.port),
            self.handle_request,
            spawn=Pool(MAX_CONCURRENT_REQUESTS),
            # The access log has no headers, so no credentials; debug keeps scrapes out of the way.
            log=LoggingLogAdapter(log, logging.DEBUG),
            error_log=LoggingLogAdapter(log, logging.ERROR),
        )
        self._server.start()
        host, port = self.address
        announce("HTTP server listening on %s:%d", host, port)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop accepting and give requests in progress `timeout` seconds to finish."""
        if self._server is not None:
            self._server.stop(timeout)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; the port is the OS's choice when the config says 0."""
        host, port = self._server.address[:2]
        return host, port

    def handle_request(self, environ, start_response):
        """The WSGI application."""
        path = environ.get("PATH_INFO") or "/"
        try:
            return self._route(path, environ, start_response)
        except Exception:
            # Never log the environ: it holds the Authorization header.
            log.exception("HTTP %s %s failed", environ.get("REQUEST_METHOD"), path)
            return _respond(start_response, "500 Internal Server Error", b"internal error\n",
                            exc_info=sys.exc_info())

    def _route(self, path: str, environ, start_response):
        if path == "/metrics":
            return self._metrics_app(environ, start_response)
        if path == "/healthz":
            return _probe(start_response, self._status.healthy(), b"ok\n", b"unhealthy\n")
        if path == "/readyz":
            return _probe(start_response, self._status.ready(), b"ready\n", b"not ready\n")
        if path == API_ROOT or path.startswith(API_ROOT + "/"):
            return self._api(path.rstrip("/"), environ, start_response)
        return _respond(start_response, "404 Not Found", b"not found\n")

    def _api(self, path: str, environ, start_response):
        # Authenticate before routing, as NanoMQ does: a path's existence is no one's business.
        if self._auth is not None:
            refusal = self._auth.refusal(environ.get("HTTP_AUTHORIZATION"))
            if refusal is not None:
                return _json(start_response, "401 Unauthorized", {"code": refusal},
                             [("WWW-Authenticate", 'Basic realm="api", charset="UTF-8"')])
        if environ["REQUEST_METHOD"] != "GET" and self._api_v4 is None:
            return _json(start_response, "405 Method Not Allowed", {"code": UNKNOWN_MISTAKE}, [("Allow", "GET")])
        if path == API_ROOT + "/prometheus" and environ["REQUEST_METHOD"] == "GET":
            body = generate_latest(self._registry) + self._nanomq.prometheus_text().encode()
            headers = []
            if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING")):
                body = gzip.compress(body)
                headers.append(("Content-Encoding", "gzip"))
            return _respond(start_response, "200 OK", body, CONTENT_TYPE_PLAIN_0_0_4, headers)
        if path == API_ROOT + "/metrics" and environ["REQUEST_METHOD"] == "GET":
            return _json(start_response, "200 OK", self._nanomq.metrics_json())
        if self._api_v4 is not None:
            return self._api_v4(environ, start_response)
        return _json(start_response, "404 Not Found", {"code": UNKNOWN_MISTAKE})


def _probe(start_response, passing: bool, ok: bytes, failing: bytes):
    if passing:
        return _respond(start_response, "200 OK", ok)
    return _respond(start_response, "503 Service Unavailable", failing)


def _json(start_response, status: str, document: dict, headers=()):
    body = json.dumps(document, separators=(",", ":")).encode()
    return _respond(start_response, status, body, "application/json", headers)


def _respond(start_response, status: str, body: bytes, content_type: str = "text/plain; charset=utf-8",
             headers=(), exc_info=None):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
                   exc_info)
    return [body]
