"""The WebHook stage: broker hooks in, HTTP POSTs out, and nothing lost silently in between.

Wiring only. Hooks run on the broker's connection greenlets and only build a body and hand
it to the `Backlog` (memory queue, and with a spool the disk). `pool_size` worker greenlets
take events from it (one at a time per ordering key, `webhook.order`), and a `Delivery`
POSTs each with retries. With a spool, `when_durable` tells the broker when the events it
caused are on disk, so it can acknowledge the PUBLISH (the `Durable` barrier of the core).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import gevent
import urllib3
from gevent.pool import Group

from appliance.broker.hooks import BrokerHooks, ClientInfo
from appliance.broker.message import Message
from appliance.config.model import WebhookConfig

from . import bodies
from .backlog import Backlog
from .delivery import DELIVERED, Delivery
from .encoding import payload_encoder
from .events import QueuedEvent, ordering_key
from .metrics import WebhookMetrics
from .rules import (
    ON_CLIENT_SUBSCRIBE, ON_CLIENT_UNSUBSCRIBE, ON_MESSAGE_ACKED, ON_MESSAGE_DELIVERED, ON_MESSAGE_DROPPED,
    ON_SESSION_SUBSCRIBED, ON_SESSION_UNSUBSCRIBED, Rules, check_rules,
)
from .sender import Sender
from .spool import Spool, open_store

log = logging.getLogger("appliance.webhook")

# Why an event was given up (the `reason` label of appliance_webhook_events_dropped_total).
QUEUE_FULL = "queue_full"  # memory queue full and no spool: the oldest event made room
RETRIES_EXHAUSTED = "retries_exhausted"  # retryable failures, max_attempts reached, no spool
REJECTED = "rejected"  # the endpoint answered a 4xx that retrying cannot fix
SHUTDOWN = "shutdown"  # still queued when the drain time ran out (no spool), or arrived after stop()
SPOOL_ERROR = "spool_error"  # the spool could not be written (a full disk) and too much waits for it
INTERNAL_ERROR = "internal_error"  # a bug in the stage (logged with its traceback)
DROP_REASONS = (QUEUE_FULL, RETRIES_EXHAUSTED, REJECTED, SHUTDOWN, SPOOL_ERROR, INTERNAL_ERROR)

HOUSEKEEPING_INTERVAL = 1.0  # seconds between checks of the drop log and the hot key
KEY_BACKLOG_WARN = 1000  # one ordering key holding more events than this is worth a warning
KEY_WARN_INTERVAL = 60.0  # seconds between those warnings


class RateLimitedLog:
    """Logs at most once per `interval`, with counts by reason: a dead endpoint under load
    must not turn into a log line per event."""

    def __init__(self, message: str, interval: float = 10.0) -> None:
        self._message = message  # "%d event(s) dropped"
        self._interval = interval
        self._pending: dict[str, int] = {}
        self._last = float("-inf")
        self._example = ""

    def add(self, reason: str, count: int = 1, example: str = "") -> None:
        self._pending[reason] = self._pending.get(reason, 0) + count
        self._example = example or self._example
        self.flush()

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._pending and (force or now - self._last >= self._interval):
            counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(self._pending.items()))
            detail = f"; last: {self._example}" if self._example else ""
            log.warning("webhook: " + self._message + " (%s)%s", sum(self._pending.values()), counts, detail)
            self._pending.clear()
            self._example = ""
            self._last = now


class WebhookStage(BrokerHooks):
    """NanoMQ-compatible WebHook delivery, with a bounded queue, retries and an optional spool."""

    def __init__(self, config: WebhookConfig, registry) -> None:
        self.config = config
        self._rules = Rules(config.rules)
        self._key_of = ordering_key(config.order)
        self.metrics = WebhookMetrics(self._gauges, DROP_REASONS)
        self._encode = payload_encoder(config.encoding, self.metrics)
        self._sender = Sender(config)
        self._log_url = safe_url(config.url)
        spool = None
        if config.queue.spool_dir:
            spool = Spool(open_store(config.queue.spool_dir, config.queue.sync, registry), self._key_of)
        self._backlog = Backlog(config.queue.max_len, spool)
        self._seq = spool.last_seq if spool else 0
        self._delivery = Delivery(config.retry, spool is not None, self.metrics, self._log_url)
        self._inflight: list[QueuedEvent | None] = [None] * config.pool_size
        self._workers = Group()  # pool_size of them; a reload may add some or retire some
        self._working: set[int] = set()  # indexes of the running workers
        self._housekeeper = None
        self._accepting = False
        self._drops = RateLimitedLog("%d event(s) dropped")
        self._key_warned_at = float("-inf")
        registry.register(self.metrics)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for warning in check_rules(self.config):
            log.warning("%s", warning)
        spool = self._backlog.spool
        if spool is not None:
            spool.store.start()
            if spool.rows_at_start:
                log.info("webhook: %d event(s) in the spool %s will be delivered first",
                         spool.rows_at_start, spool.store.path)
        self._backlog.start()
        self._spawn_workers()
        self._housekeeper = gevent.spawn(self._housekeep)
        self._accepting = True
        log.info("webhook: POSTing to %s with %d worker(s), order %s, queue %d, spool %s", self._log_url,
                 self.config.pool_size, self.config.order, self.config.queue.max_len,
                 f"{self.config.queue.spool_dir} (sync {self.config.queue.sync})" if spool else "off")

    def stop(self, timeout: float) -> None:
        """Stop accepting, deliver what is queued for at most `timeout` seconds, then keep
        what is left in the spool (or count it as dropped)."""
        if not self._accepting:
            return
        self._accepting = False
        deadline = time.monotonic() + timeout
        log.info("webhook: draining %d queued event(s) for at most %.1f s", self._pending(), timeout)
        while self._pending() and time.monotonic() < deadline:
            gevent.sleep(0.01)
        self._workers.kill(block=True, timeout=1.0)
        self._housekeeper.kill()
        self._backlog.stop()
        left = [item for item in self._inflight if item is not None] + self._backlog.drain()
        self._inflight = [None] * self.config.pool_size
        spool = self._backlog.spool
        if spool is None:
            if left:
                self._drop(SHUTDOWN, len(left), "the drain time ran out")
        elif not spool.store.close() and spool.rows:
            # In-flight and queued events are on disk already: nothing more to write.
            log.info("webhook: %d event(s) kept in the spool for the next start", spool.rows)
        self._drops.flush(force=True)
        self._sender.close()

    def reconfigure(self, config: WebhookConfig) -> list[str]:
        """Use a reloaded webhook block from now on; returns the keys that only a restart
        can change (webhook.queue.*, webhook.order: the spool and the ordering keys of what
        is queued), which keep their running values. Events already queued stay queued and
        go to the new url with the new headers; a POST under way finishes on its old
        connection. Rules and encoding apply to the next event; pool_size adds workers, or
        retires the extra ones after their current event."""
        old = self.config
        kept = [name for name, same in (("webhook.queue", old.queue == config.queue),
                                        ("webhook.order", old.order == config.order)) if not same]
        config = dataclasses.replace(config, queue=old.queue, order=old.order)
        self.config = config
        self._rules = Rules(config.rules)
        self._encode = payload_encoder(config.encoding, self.metrics)
        for warning in check_rules(config):
            log.warning("%s", warning)
        connection = ("url", "headers", "tls", "cancel_timeout", "pool_size")
        if any(getattr(old, name) != getattr(config, name) for name in connection):
            retired, self._sender = self._sender, Sender(config)
            retired.close()  # idle connections now; busy ones when their worker lets go
        if (old.url, old.retry) != (config.url, config.retry):
            self._log_url = safe_url(config.url)
            self._delivery = Delivery(config.retry, self._backlog.spool is not None, self.metrics, self._log_url)
        if config.pool_size > len(self._inflight):
            self._inflight += [None] * (config.pool_size - len(self._inflight))
        if self._accepting:
            self._spawn_workers()
        return kept

    def _spawn_workers(self) -> None:
        for index in range(self.config.pool_size):
            if index not in self._working:
                self._working.add(index)
                self._workers.spawn(self._work, index)

    def _pending(self) -> int:
        return self._backlog.depth + self._backlog.spilled + sum(item is not None for item in self._inflight)

    # -- the Durable barrier -----------------------------------------------------------------

    @property
    def durable(self) -> bool:
        """Whether this stage keeps events on disk (a spool): register it as a `Durable` only
        then, so without a spool acknowledgements cost nothing extra."""
        return self._backlog.spool is not None

    def when_durable(self, callback) -> None:
        """Call `callback` (on the loop) once every event accepted so far is on disk; at once
        without a spool (nothing is promised beyond memory then)."""
        self._backlog.when_durable(callback)

    def mark(self):
        return self._backlog.mark()

    # -- hooks (connection greenlets: enqueue only, never block, never raise) ------------------

    def on_client_connack(self, client: ClientInfo, reason_code: int) -> None:
        if self._rules.connack:
            self._accept(client.client_id, None, bodies.CONNACK, lambda: bodies.connack_body(client, reason_code))

    def on_client_disconnected(self, client: ClientInfo, reason: str) -> None:
        if self._rules.disconnected:
            self._accept(client.client_id, None, bodies.DISCONNECTED,
                         lambda: bodies.disconnected_body(client, reason))

    def on_message_publish(self, client: ClientInfo | None, message: Message) -> None:
        if self._rules.publish(message.topic):
            self._accept(message.publisher_id, message.topic, bodies.PUBLISH,
                         lambda: bodies.publish_body(message, self._encode(message.payload)))

    # EMQX's events: the broker calls these only if `wants()` says a rule names them.

    def wants(self, event: str) -> bool:
        return self._rules.wants(event)

    def on_client_connect(self, client: ClientInfo) -> None:
        self._accept(client.client_id, None, bodies.CONNECT, lambda: bodies.connect_body(client))

    def on_client_connected(self, client: ClientInfo) -> None:
        connected_at = int(time.time() * 1000)
        self._accept(client.client_id, None, bodies.CONNECTED, lambda: bodies.connected_body(client, connected_at))

    # Subscription events keep the client's order (no topic for the ordering key): a
    # receiver sees subscribe, subscribed and disconnected of one client in that order.

    def on_client_subscribe(self, client: ClientInfo, subscription) -> None:
        if self._rules.matches(ON_CLIENT_SUBSCRIBE, subscription.topic_filter):
            self._accept(client.client_id, None, bodies.SUBSCRIBE, lambda: bodies.subscribe_body(client, subscription))

    def on_session_subscribed(self, client: ClientInfo, subscription, is_new: bool) -> None:
        if self._rules.matches(ON_SESSION_SUBSCRIBED, subscription.topic_filter):
            self._accept(client.client_id, None, bodies.SUBSCRIBED,
                         lambda: bodies.subscribed_body(client, subscription, is_new))

    def on_client_unsubscribe(self, client: ClientInfo, topic_filter: str) -> None:
        if self._rules.matches(ON_CLIENT_UNSUBSCRIBE, topic_filter):
            self._accept(client.client_id, None, bodies.UNSUBSCRIBE,
                         lambda: bodies.unsubscribe_body(client, topic_filter))

    def on_session_unsubscribed(self, client: ClientInfo, topic_filter: str) -> None:
        if self._rules.matches(ON_SESSION_UNSUBSCRIBED, topic_filter):
            self._accept(client.client_id, None, bodies.UNSUBSCRIBED,
                         lambda: bodies.unsubscribed_body(client, topic_filter))

    def on_session_terminated(self, client: ClientInfo, reason: str) -> None:
        self._accept(client.client_id, None, bodies.TERMINATED, lambda: bodies.terminated_body(client, reason))

    # Message events are keyed as publishes are: by the client they concern (the subscriber
    # for delivered/acked) or by the message's topic (webhook.order = topic).

    def on_message_delivered(self, client: ClientInfo, message: Message, qos: int, retain: bool) -> None:
        if self._rules.matches(ON_MESSAGE_DELIVERED, message.topic):
            self._accept(client.client_id, message.topic, bodies.DELIVERED,
                         lambda: bodies.delivered_body(client, message, qos, retain, self._encode(message.payload)))

    def on_message_acked(self, client: ClientInfo, message: Message, qos: int, retain: bool) -> None:
        if self._rules.matches(ON_MESSAGE_ACKED, message.topic):
            self._accept(client.client_id, message.topic, bodies.ACKED,
                         lambda: bodies.acked_body(client, message, qos, retain, self._encode(message.payload)))

    def on_message_dropped(self, client: ClientInfo | None, message: Message, reason: str) -> None:
        if self._rules.matches(ON_MESSAGE_DROPPED, message.topic):
            self._accept(message.publisher_id, message.topic, bodies.DROPPED,
                         lambda: bodies.dropped_body(message, reason, self._encode(message.payload)))

    def _accept(self, client_id: str, topic: str | None, event: str, build) -> None:
        try:
            if not self._accepting:
                self._drop(SHUTDOWN, 1, f"{event} after stop")
                return
            self._seq += 1
            item = QueuedEvent(self._seq, self._key_of(client_id, topic), client_id, topic, event, build())
            self.metrics.events[event] += 1
            evicted, refused = self._backlog.put(item)
            if evicted is not None:
                self._drop(QUEUE_FULL, 1, "", evicted)
            if refused is not None:
                self._drop(refused, 1, "the spool cannot be written")
        except Exception:  # noqa: BLE001 - a hook must never raise into the broker
            log.exception("webhook: could not accept a %s event", event)
            self._drop(INTERNAL_ERROR, 1)

    def _drop(self, reason: str, count: int, detail: str = "", item: QueuedEvent | None = None) -> None:
        self.metrics.dropped[reason] += count
        if item is not None:
            self._backlog.forget(item)
        self._drops.add(reason, count, detail)

    # -- delivery (pool_size worker greenlets) -------------------------------------------------

    def _work(self, index: int) -> None:
        sender = self._sender
        channel = sender.channel()
        backlog, spool = self._backlog, self._backlog.spool
        item = None  # the event just handled, settled when the next one is taken
        try:
            while index < self.config.pool_size:  # a reload may have retired this worker
                previous, item = item, backlog.take(settled=item)
                if sender is not self._sender:  # a reload changed the endpoint: this event goes there
                    sender.release(channel)
                    sender = self._sender
                    channel = sender.channel()
                self._inflight[index] = item
                try:
                    if item.attempted:
                        self.metrics.redelivered += 1  # may have reached the endpoint before a crash
                    elif not backlog.mark_attempted(item, self.config.pool_size) and not spool.store.failing:
                        # So a crash from here on counts it as redelivered; bounded, so a
                        # failing disk delays deliveries by a second, never stops them.
                        spool.store.wait_durable(timeout=1.0, generation=item.mark)
                    if previous is not None and previous.spooled and not spool.store.committed(previous.mark) \
                            and not spool.store.failing:
                        # The previous event's 2xx is not durable yet: a crash now would send it
                        # again besides this one. Waiting keeps each worker to one event a crash
                        # can repeat, so duplicates stay within pool_size.
                        spool.store.wait_durable(timeout=1.0, generation=previous.mark)
                    outcome, detail = self._delivery.deliver(channel, item)
                    if outcome != DELIVERED:
                        self.metrics.dropped[outcome] += 1
                        self._drops.add(outcome, 1, detail)
                except Exception:  # noqa: BLE001 - a bug must cost one event, not the worker
                    log.exception("webhook: could not deliver a %s event", item.event)
                    self.metrics.dropped[INTERNAL_ERROR] += 1
                self._inflight[index] = None
            if item is not None:
                backlog.settle(item)
        finally:
            self._working.discard(index)
            sender.release(channel)

    # -- logs ----------------------------------------------------------------------------------

    def _housekeep(self) -> None:
        while True:
            gevent.sleep(HOUSEKEEPING_INTERVAL)
            self._drops.flush()
            self._warn_hot_key()

    def _warn_hot_key(self) -> None:
        longest, head = self._backlog.longest_key()
        now = time.monotonic()
        if longest > KEY_BACKLOG_WARN and head is not None and now - self._key_warned_at >= KEY_WARN_INTERVAL:
            self._key_warned_at = now
            scope = self.config.order
            where = f"client {head.client_id!r}" + (f", topic {head.topic!r}" if scope == "topic" else "")
            log.warning("webhook: %d events of %s wait to be POSTed one at a time (webhook.order = %s); "
                        "a client this busy may need webhook.order = topic or none", longest, where, scope)

    # -- metrics -------------------------------------------------------------------------------

    def _gauges(self) -> tuple[int, int, int, int, int]:
        holding = sum(item is not None for item in self._inflight)
        spool = self._backlog.spool
        on_disk = spool.rows if spool is not None else 0
        return (self._backlog.depth + holding, on_disk, self._delivery.inflight, self.config.pool_size,
                self._backlog.longest_key()[0])


def safe_url(url: str) -> str:
    """The URL without credentials or query, for logs (secrets never appear in them)."""
    parsed = urllib3.util.parse_url(url)
    return f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}{parsed.path or ''}"
