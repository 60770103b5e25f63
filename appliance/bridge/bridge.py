"""One bridge (forward rules, subscription rules, loop marking, its queue and link), and the
set of all configured bridges that app.py starts and stops.

Local -> upstream: the broker tells the bridges about every routed message (on the
publisher's greenlet); a bridge matches it against its `forwards` (first match wins),
remaps the topic and queues it. The link writes the queue upstream. Upstream -> local: the
link hands every PUBLISH to the bridge, which remaps it by the first matching
`subscription` and publishes it into the local broker as the bridge's own identity.

No loops: a message a bridge published locally carries that bridge's identity object and is
never forwarded by that same bridge, nor by another bridge to the same upstream host and port. With MQTT 5 the bridge also subscribes with No Local,
so the upstream does not send back what the bridge published there; with 3.1/3.1.1 (no No
Local) an `EchoGuard` recognises and drops those echoes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque

from ..config.bridges import RETAIN_KEEP, BridgeConfig
from .durable_queue import DurableSendQueue, unconfigured
from .link import Link
from .local import LocalBroker
from .metrics import BridgeCollector, BridgeStats, ack_rtt_histogram
from .queue import MemorySendQueue, Outgoing, SendQueue
from .session import Incoming
from .topics import matches, remapper

log = logging.getLogger("appliance.bridge")


class EchoGuard:
    """What a 3.1/3.1.1 bridge forwarded to topics it also subscribes to, so the copy the
    upstream sends back can be recognised (by topic and payload) and dropped once."""

    def __init__(self, ttl: float = 60.0, max_entries: int = 100_000) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._counts: Counter = Counter()
        self._order: deque = deque()  # (recorded at, key), oldest first

    def record(self, topic: str, payload: bytes) -> None:
        key = (topic, hash(payload))
        self._counts[key] += 1
        self._order.append((time.monotonic(), key))
        self._prune()

    def consume(self, topic: str, payload: bytes) -> bool:
        key = (topic, hash(payload))
        if self._counts.get(key, 0) <= 0:
            return False
        self._counts[key] -= 1
        if not self._counts[key]:
            del self._counts[key]
        return True

    def _prune(self) -> None:
        deadline = time.monotonic() - self.ttl
        order, counts = self._order, self._counts
        while order and (order[0][0] < deadline or len(order) > self.max_entries):
            _, key = order.popleft()
            if counts.get(key, 0) > 0:
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]


class Bridge:
    """One `bridges.mqtt.<name>`."""

    def __init__(self, config: BridgeConfig, local: LocalBroker, queue: SendQueue, observe_rtt,
                 max_packet_size: int) -> None:
        self.config = config
        self.name = config.name
        self.stats = BridgeStats()
        self._local = local
        self._queue = queue
        self._durable = isinstance(queue, DurableSendQueue)
        if self._durable and queue.restored:
            log.info("bridge %s: %d message(s) from the disk queue, sent once connected", self.name, queue.restored)
        if self._durable and queue.dropped_at_start:
            self.stats.dropped["queue_full"] += queue.dropped_at_start
            log.warning("bridge %s: %d older message(s) on disk dropped: over the queue bound (%d)", self.name,
                        queue.dropped_at_start, queue.restored)
        self.identity = local.identity(config.clientid, config.username, config.proto_ver, (config.host, config.port))
        self._forwards = [(remapper(f.local_topic, f.remote_topic, f.prefix, f.suffix), f) for f in config.forwards]
        self._subscriptions = [(remapper(s.remote_topic, s.local_topic, s.prefix, s.suffix), s)
                               for s in config.subscription]
        self._echo = EchoGuard() if config.proto_ver < 5 and config.forwards and config.subscription else None
        self._overflowing = False
        # Publishers whose messages this bridge never forwards: itself, and every bridge of
        # this appliance to the same upstream (else two such bridges would pass a message
        # round forever). By identity: a client can have the same fields, never the same object.
        self.loop_ids = {id(self.identity)}
        self.link = Link(config, queue, self.stats, self._on_upstream_message, observe_rtt, max_packet_size)

    def queue_depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self.link.start()

    def retire(self, timeout: float) -> SendQueue:
        """A reload removes or changes this bridge: disconnect from the upstream and hand back
        the send queue (what is still queued), for the bridge that replaces it."""
        self.link.stop(timeout)
        return self._queue

    def stop(self, timeout: float) -> None:
        self.link.stop(timeout)
        kept = self._queue.kept()
        lost = len(self._queue) - kept
        if lost:
            self.stats.dropped["shutdown"] += lost
            log.warning("bridge %s: %d message(s) still queued for the upstream at shutdown are lost (%s)",
                        self.name, lost, "QoS 0 is not kept on disk" if self._durable else
                        "the send queue is in memory; the sqlite block keeps QoS 1/2 on disk")
        if kept:
            log.info("bridge %s: %d message(s) kept on disk for the upstream, sent after the next start",
                     self.name, kept)

    # -- local -> upstream -------------------------------------------------------------

    def on_local_message(self, publisher, topic: str, payload: bytes, qos: int, retain: bool,
                         properties: dict) -> None:
        if id(publisher) in self.loop_ids:  # came from this upstream: never send it back
            return
        for remap, rule in self._forwards:
            remote = remap(topic)
            if remote is None:
                continue
            if not remote:
                self.stats.dropped["bad_topic"] += 1
                return
            entry = Outgoing(remote, payload, qos if rule.qos is None else rule.qos,
                             retain if rule.retain == RETAIN_KEEP else bool(rule.retain),
                             properties if self.config.proto_ver == 5 else {})
            if self._echo is not None and any(matches(s.remote_topic, remote) for s in self.config.subscription):
                self._echo.record(remote, payload)
            self._enqueue(entry)
            return

    def _enqueue(self, entry: Outgoing) -> None:
        queue = self._queue
        dropped = queue.append(entry)
        if dropped is not None:
            self.stats.dropped["queue_full"] += 1
            if not self._overflowing:
                self._overflowing = True
                log.warning("bridge %s: send queue full (max_send_queue_len = %d); dropping the oldest "
                            "messages", self.name, self.config.max_send_queue_len)
        elif self._overflowing and len(queue) < self.config.max_send_queue_len // 2:
            self._overflowing = False
            log.info("bridge %s: send queue below half full again", self.name)
        self.link.wake()

    # -- upstream -> local -------------------------------------------------------------

    def _on_upstream_message(self, incoming: Incoming) -> None:
        if self._echo is not None and self._echo.consume(incoming.topic, incoming.payload):
            self.stats.dropped["loop"] += 1
            return
        topic, retain = incoming.topic, incoming.retain
        for remap, rule in self._subscriptions:
            local = remap(incoming.topic)
            if local is None:
                continue
            if not local:
                self.stats.dropped["bad_topic"] += 1
                return
            topic = local
            if rule.retain != RETAIN_KEEP:
                retain = bool(rule.retain)
            break
        # A message no rule matches (e.g. from subscriptions an old persistent session kept
        # upstream) keeps its topic, as in NanoMQ.
        self._local.publish(self.identity, topic, incoming.payload, incoming.qos, retain, incoming.properties)
        self.stats.received += 1


class Bridges:
    """Every configured bridge, started and stopped together; one hook into the broker."""

    def __init__(self, configs: tuple[BridgeConfig, ...], broker, registry, max_packet_size: int,
                 store=None, disk_cache_size: int | None = None) -> None:
        """`store`: the shared durable store (appliance/store) for the disk queue, bounded
        by each max_send_queue_len and, when given, `disk_cache_size` (sqlite.disk_cache_size);
        None: in memory."""
        self._local = local = LocalBroker(broker)
        self._rtt = ack_rtt_histogram(registry)
        self._max_packet_size = max_packet_size
        self._store = store
        self._disk_cache_size = disk_cache_size
        self._started = False
        self.bridges = [self._bridge(config) for config in configs]
        if store is not None:
            for name, rows in unconfigured(store, {config.name for config in configs}):
                log.warning("bridge %s is not configured: its %d message(s) on disk are kept, not sent (configure "
                            "bridges.mqtt.%s again to send them)", name, rows, name)
        self._link_loops()
        registry.register(BridgeCollector(self.bridges))
        local.listen(self._on_local_message)

    def _bridge(self, config: BridgeConfig, queue: SendQueue | None = None) -> Bridge:
        if queue is None:
            queue = (MemorySendQueue(config.max_send_queue_len) if self._store is None else
                     DurableSendQueue(self._store, config.name, min(config.max_send_queue_len,
                                                                   self._disk_cache_size or config.max_send_queue_len)))
        return Bridge(config, self._local, queue, self._rtt.labels(config.name).observe, self._max_packet_size)

    def _link_loops(self) -> None:
        for bridge in self.bridges:
            bridge.loop_ids = {id(bridge.identity)} | {
                id(other.identity) for other in self.bridges
                if (other.config.host, other.config.port) == (bridge.config.host, bridge.config.port)}

    def reconfigure(self, configs: tuple[BridgeConfig, ...], timeout: float) -> list[str]:
        """A reload: start the new bridges, stop the removed ones, restart the changed ones
        (a changed bridge keeps what its queue holds when its queue length is unchanged);
        bridges whose config is the same are not touched. Returns the names changed."""
        wanted = {config.name: config for config in configs}
        current = {bridge.name: bridge for bridge in self.bridges}
        changed, kept = [], []
        for name, bridge in current.items():
            if wanted.get(name) == bridge.config:
                kept.append(bridge)
                continue
            changed.append(name)
            queue = bridge.retire(timeout)
            config = wanted.get(name)
            if config is None:
                if len(queue):
                    bridge.stats.dropped["shutdown"] += len(queue)
                    log.warning("bridge %s: removed by a reload with %d message(s) still queued (lost)",
                                name, len(queue))
                continue
            same_queue = config.max_send_queue_len == bridge.config.max_send_queue_len
            kept.append(self._bridge(config, queue if same_queue else None))
        for name, config in wanted.items():
            if name not in current:
                changed.append(name)
                kept.append(self._bridge(config))
        order = list(wanted)
        kept.sort(key=lambda bridge: order.index(bridge.name))
        self.bridges[:] = kept  # the collector reads this same list
        self._link_loops()
        if self._started:
            for bridge in self.bridges:
                if bridge.name in changed:
                    bridge.start()
        return sorted(changed)

    def _on_local_message(self, publisher, topic, payload, qos, retain, properties) -> None:
        for bridge in self.bridges:
            bridge.on_local_message(publisher, topic, payload, qos, retain, properties)

    def start(self) -> None:
        self._started = True
        for bridge in self.bridges:
            bridge.start()

    def stop(self, timeout: float) -> None:
        self._started = False
        for bridge in self.bridges:
            bridge.stop(timeout)
