"""`listeners.ws` and `listeners.wss`: MQTT over WebSocket, as a TCP listener whose
accepted sockets are upgraded before MQTT starts.

Everything after the upgrade is the TCP listener's: the same `Connection`, codec, limits,
auth, ACL, keepalive and hooks, reading and writing a `WebSocketStream` as it does a TLS
socket. The upgrade runs in the accept handler, within connect_timeout.
"""

from __future__ import annotations

import logging
from collections import Counter

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from . import websocket
from .tcp import TcpListener, Wiring

log = logging.getLogger(__name__)

# A WebSocket message carries at least one whole MQTT packet; beyond the largest packet
# allowed, this much room for a client that packs small packets in beside it.
MESSAGE_SLACK = 64 * 1024


class WsListener(TcpListener):
    """One `listeners.ws[.<name>]` or `listeners.wss[.<name>]` entry (TLS first for wss)."""

    def __init__(self, config, wiring: Wiring, admission) -> None:
        super().__init__(config, wiring, admission)
        settings = config.websocket
        self._path = settings.path
        self._origins = settings.allowed_origins
        self._upgrade_timeout = wiring.settings.mqtt.connect_timeout
        self.max_message_size = settings.max_message_size or wiring.settings.mqtt.max_packet_size + MESSAGE_SLACK
        self.upgrades = 0  # upgrades accepted
        self.refused: Counter[str] = Counter()  # upgrades refused, by Refused.reason (or "timeout")
        self.closes: Counter[int] = Counter()  # ended connections, by the Close status (1006: none)

    def _serving(self) -> str:
        scheme = "wss" if self.config.tls is not None else "ws"
        host, port = self.address
        return f" ({scheme}://{host}:{port}{self._path})"

    def _stream(self, sock, address):
        try:
            accepted = websocket.upgrade(sock, self._path, self._origins, self._upgrade_timeout)
        except websocket.Refused as refused:
            self.refused[refused.reason] += 1
            log.info("WebSocket upgrade from %s:%s refused (%d): %s", address[0], address[1], refused.status, refused)
            return None
        except OSError as error:
            self.refused["timeout" if isinstance(error, TimeoutError) else "socket"] += 1
            log.info("WebSocket upgrade from %s:%s failed: %s", address[0], address[1], error)
            return None
        self.upgrades += 1
        return websocket.WebSocketStream(sock, self.max_message_size, accepted.trailing)

    def _closed(self, connection) -> None:
        super()._closed(connection)
        self.closes[connection.sock.close_code or websocket.CloseReason.ABNORMAL_CLOSURE] += 1


REFUSAL_REASONS = ("not_websocket", "path", "version", "origin", "subprotocol", "bad_request", "incomplete",
                   "timeout", "socket")
# 1000 normal, 1001 going away, 1002 protocol error, 1003 text frame, 1006 dropped without a
# Close, 1009 message too big; a peer's other codes are counted as they come.
CLOSE_CODES = (1000, 1001, 1002, 1003, 1006, 1009)


class WebSocketCollector(Collector):
    """Per-listener WebSocket numbers, read at scrape time; every reason exists at 0."""

    def __init__(self, listeners: list[WsListener]) -> None:
        self._listeners = listeners

    def collect(self):
        open_now = GaugeMetricFamily("appliance_websocket_connections",
                                     "WebSocket connections open now, by listener.", labels=["listener"])
        upgrades = CounterMetricFamily("appliance_websocket_upgrades_total",
                                       "WebSocket upgrades accepted, by listener.", labels=["listener"])
        refused = CounterMetricFamily("appliance_websocket_upgrades_refused_total",
                                      "WebSocket upgrades refused or failed, by listener and reason.",
                                      labels=["listener", "reason"])
        closes = CounterMetricFamily("appliance_websocket_closes_total",
                                     "WebSocket connections ended, by listener and Close status (1006: no Close).",
                                     labels=["listener", "code"])
        for listener in self._listeners:
            name = listener.config.name
            open_now.add_metric([name], listener.open_connections)
            upgrades.add_metric([name], listener.upgrades)
            for reason in REFUSAL_REASONS:
                refused.add_metric([name, reason], listener.refused[reason])
            for code in sorted(set(CLOSE_CODES) | set(listener.closes)):
                closes.add_metric([name, str(int(code))], listener.closes[code])
        yield open_now
        yield upgrades
        yield refused
        yield closes
