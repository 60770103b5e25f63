"""One running appliance: the broker core, its listeners, the webhook stage and the HTTP
server, started and stopped together."""

from __future__ import annotations

import logging

from .broker import Broker
from .config.model import Config
from .listeners.admission import Admission
from .listeners.tcp import TcpListener
from .metrics import HttpServer, create_registry

log = logging.getLogger(__name__)

_CONNECTION_STOP_TIMEOUT = 1.0  # seconds for connections to flush their last packets


class Appliance:
    """Builds every part from a `Config`; `start()` and `stop()` are all there is."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.broker = Broker(config.mqtt, config.limits)
        self.broker.access = _access_control(config, self.broker.stats)
        self.registry = create_registry(self.broker)
        self.webhook = None
        if config.webhook is not None:
            # Imported only when configured: urllib3 and the stage cost start-up time and
            # memory on boxes that do not use them.
            from .webhook import WebhookStage

            self.webhook = WebhookStage(config.webhook, self.registry)
            self.broker.add_hooks(self.webhook)
        admission = Admission(config.limits, self.broker.stats)  # shared: limits count every listener
        self.listeners = [TcpListener(listener, self.broker, admission) for listener in config.listeners
                          if listener.websocket is None]
        if any(listener.websocket is not None for listener in config.listeners):
            from .listeners.ws import WebSocketCollector, WsListener  # wsproto and h11 only when used

            ws = [WsListener(listener, self.broker, admission) for listener in config.listeners
                  if listener.websocket is not None]
            self.registry.register(WebSocketCollector(ws))
            self.listeners += ws
        self.http = (HttpServer(config.http_server, self.registry, self.broker, self)
                     if config.http_server else None)
        self._accepting = False
        self._started = False

    # Answers for /healthz and /readyz.
    def healthy(self) -> bool:
        return self._started

    def ready(self) -> bool:
        return self._accepting

    def start(self) -> None:
        self.broker.start()
        if self.webhook is not None:
            self.webhook.start()
        for listener in self.listeners:
            listener.start()
        if self.http is not None:
            self.http.start()
        self._started = self._accepting = True

    def stop(self) -> None:
        """Stop accepting, disconnect clients, drain the webhook queue, stop serving HTTP."""
        log.info("shutting down")
        self._accepting = False
        for listener in self.listeners:
            listener.close()
        self.broker.stop()
        for listener in self.listeners:
            listener.stop(_CONNECTION_STOP_TIMEOUT)
        if self.webhook is not None:
            self.webhook.stop(self.config.webhook.drain_timeout)
        if self.http is not None:
            self.http.stop()
        log.info("stopped")


def _access_control(config: Config, stats):
    """None without an auth block: the broker then checks nothing at all."""
    if config.auth is None:
        return None
    from .auth.access import AccessControl  # only with an auth block, as the webhook stage
    from .auth.http import HttpAuth

    http = HttpAuth(config.auth.http, stats) if config.auth.http is not None else None
    return AccessControl(config.auth, http)
