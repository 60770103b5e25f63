"""One running appliance: the broker core, its listeners, the webhook stage and the HTTP
server, built and wired here and started and stopped together.

Wiring is explicit: the stats, the shared timers and access control are made once here
and handed to each part that uses them; no part reaches through another for them.
"""

from __future__ import annotations

import ctypes
import logging

from typing import Callable

from .broker import Broker
from .broker.client import ClientSettings
from .broker.durability import barrier
from .broker.stats import BrokerStats
from .broker.timers import Timers
from .config import LoadedConfig, load_config
from .config.model import Config
from .listeners.admission import Admission
from .listeners.gate import Gate
from .listeners.tcp import TcpListener, Wiring
from .metrics import HttpServer, create_registry
from .reload import ReloadFailed, Reloader

log = logging.getLogger(__name__)

_CONNECTION_STOP_TIMEOUT = 1.0  # seconds for connections to flush their last packets


class Appliance:
    """Builds every part from a `Config`; `start()` and `stop()` are all there is."""

    def __init__(self, config: Config, load: Callable[[], LoadedConfig] | None = None) -> None:
        """`load` re-reads the configuration for a hot reload (SIGHUP, POST /api/v4/reload);
        by default the file `config` came from."""
        self.config = config
        self.stats = BrokerStats()
        self.timers = Timers()
        self.access = access_control(config, self.stats)
        self.broker = Broker(config.mqtt, config.limits, self.stats, self.timers)
        self.registry = create_registry(self.broker)
        self.webhook = None
        # Parts whose records must be safe before a QoS 1/2 PUBLISH is acknowledged (the
        # webhook spool); with none, acknowledgements go at once.
        durables: list = []
        self.persistence = None
        if config.persistence is not None:
            from .persistence import Persistence  # only with a persistence block

            self.persistence = Persistence(config.persistence, self.registry)
            self.persistence.load(self.broker, self.stats, config.mqtt.max_mqueue_len, config.limits.max_queued_bytes)
            durables.append(self.persistence)
        if config.webhook is not None:
            # Imported only when configured: urllib3 and the stage cost start-up time and
            # memory on boxes that do not use them.
            from .webhook import WebhookStage

            self.webhook = WebhookStage(config.webhook, self.registry)
            self.broker.add_hooks(self.webhook)
            if self.webhook.durable:
                durables.append(self.webhook)
        self.bridges = None
        if config.bridges:
            self.bridges = self._bridges(config.bridges)
        settings = ClientSettings(
            config.mqtt, config.limits,
            authenticates=self.access is not None,
            disconnect_on_deny=self.access is not None and self.access.disconnect_on_deny,
            barrier=barrier(durables),
        )
        self.gate = Gate(self.access)
        self.wiring = Wiring(self.broker, settings, self.stats, self.timers, self.gate, config.limits.max_outbox_bytes)
        self.admission = Admission(config.limits, self.stats)  # shared: limits count every listener
        self.listeners = [TcpListener(listener, self.wiring, self.admission) for listener in config.listeners
                          if listener.websocket is None]
        if any(listener.websocket is not None for listener in config.listeners):
            from .listeners.ws import WebSocketCollector, WsListener  # wsproto and h11 only when used

            ws = [WsListener(listener, self.wiring, self.admission) for listener in config.listeners
                  if listener.websocket is not None]
            self.registry.register(WebSocketCollector(ws))
            self.listeners += ws
        if load is None and config.source is not None:
            source = config.source
            load = lambda: load_config(source)  # noqa: E731
        self.reloader = Reloader(self, load, self.registry) if load is not None else None
        self.http = (HttpServer(config.http_server, self.registry, self.broker, self, self._api())
                     if config.http_server else None)
        self._accepting = False
        self._started = False

    def _api(self):
        from .api import ApiV4, BrokerView  # only with an HTTP server (start-up RSS)

        return ApiV4(BrokerView(self.broker), lambda: self.config, reload=self._api_reload)

    def _api_reload(self):
        if self.reloader is None:
            raise ReloadFailed("this appliance was not started from a file: there is nothing to re-read")
        return self.reloader.api_reload()

    def _bridges(self, configs):
        """The bridges; their send queue is on disk in the persistence store when there is one
        (a persistence or NanoMQ sqlite block, sqlite.disk_cache_size > 0), else in memory."""
        from .bridge.bridge import Bridges  # only with a bridges block, as the webhook stage

        store, disk_cache_size = None, None
        sqlite = self.config.sqlite
        if self.persistence is not None and (sqlite is None or sqlite.disk_queue):
            store = self.persistence.store  # already among the Durables: forwarded QoS 1/2 is on disk first
            disk_cache_size = sqlite.disk_cache_size if sqlite is not None else None
        return Bridges(configs, self.broker, self.registry, self.config.mqtt.max_packet_size, store,
                       disk_cache_size)

    # -- hot reload (reload.py decides; these keep the appliance's own references current) --

    def reload(self) -> None:
        """SIGHUP: re-read the file and apply it (see reload.py); ignored while starting."""
        if not self._started:
            log.warning("SIGHUP during start-up ignored: send it again once the broker is ready")
        elif self.reloader is not None:
            self.reloader.on_signal()

    def adopt(self, config: Config) -> None:
        """The Config now in force after a reload (what GET /api/v4/configuration shows)."""
        self.config = config

    def adopt_access(self, access) -> None:
        self.access = access

    def start_bridges(self, configs) -> None:
        """A reload added the first bridges."""
        self.bridges = self._bridges(configs)
        if self._started:
            self.bridges.start()

    # Answers for /healthz and /readyz.
    def healthy(self) -> bool:
        return self._started

    def ready(self) -> bool:
        return self._accepting

    def start(self) -> None:
        _large_buffers_back_to_the_os()
        self.timers.start()
        if self.persistence is not None:
            self.persistence.start(self.timers)
        self.broker.start()
        if self.webhook is not None:
            self.webhook.start()
        if self.bridges is not None:
            self.bridges.start()  # readiness never waits for an upstream
        for listener in self.listeners:
            listener.start()
        if self.http is not None:
            self.http.start()
        self._started = self._accepting = True

    def stop(self) -> None:
        """Stop accepting, publish the wills now due, disconnect clients, drain the webhook
        queue, stop serving HTTP."""
        log.info("shutting down")
        self._accepting = False
        for listener in self.listeners:
            listener.close()
        self.broker.shut_down()
        for listener in self.listeners:
            listener.stop(_CONNECTION_STOP_TIMEOUT)
        if self.bridges is not None:
            self.bridges.stop(_CONNECTION_STOP_TIMEOUT)
        self.timers.stop()
        if self.persistence is not None:
            self.persistence.close()  # every connection has detached: their sessions are recorded
        if self.access is not None:
            self.access.close()
        if self.webhook is not None:
            self.webhook.stop(self.config.webhook.drain_timeout)
        if self.http is not None:
            self.http.stop()
        log.info("stopped")


def access_control(config: Config, stats: BrokerStats):
    """None without an auth block: the broker then checks nothing at all."""
    if config.auth is None:
        return None
    from .auth.access import AccessControl  # only with an auth block, as the webhook stage
    from .auth.http import HttpAuth

    http = HttpAuth(config.auth.http, stats) if config.auth.http is not None else None
    return AccessControl(config.auth, http)


def _large_buffers_back_to_the_os() -> None:
    """Give every allocation of 128 KB or more (large payloads, a backlog's chunks) its own
    mmap, so it goes back to the OS when freed. glibc otherwise raises that threshold after
    the first such free and serves big payloads from the heap, which rarely shrinks: the
    burst held for a subscriber that stopped reading would stay in RSS after it left."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD; setting it also stops the raising
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        pass
