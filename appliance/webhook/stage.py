"""The WebHook stage: broker hooks in, HTTP POSTs out, and nothing lost silently in between.

Hooks run on the broker's connection greenlets and only build a body and enqueue it. A
gevent pool of `pool_size` workers, each owning one partition of the queue (so one client's
events stay in order), POSTs them with retries. With a spool directory, events that do not
fit in memory, or arrive while the endpoint is failing, go to disk and come back later.
"""

from __future__ import annotations

import logging
import random
import time

import gevent
import urllib3
from gevent.event import Event
from gevent.pool import Pool

from appliance.broker.hooks import BrokerHooks, ClientInfo
from appliance.broker.message import Message
from appliance.config.model import WebhookConfig

from . import bodies
from .encoding import payload_encoder
from .metrics import WebhookMetrics
from .queue import EventQueue, QueuedEvent
from .rules import Rules, check_rules
from .sender import Sender
from .spool import Spool

log = logging.getLogger("appliance.webhook")

# Why an event was given up (the `reason` label of appliance_webhook_events_dropped_total).
QUEUE_FULL = "queue_full"  # memory queue full and no spool: the oldest event made room
RETRIES_EXHAUSTED = "retries_exhausted"  # retryable failures, max_attempts reached, no spool
REJECTED = "rejected"  # the endpoint answered a 4xx that retrying cannot fix
SHUTDOWN = "shutdown"  # still queued when the drain time ran out, or arrived after stop()
SPOOL_ERROR = "spool_error"  # the spool could not be written
SPOOL_BACKLOG = "spool_backlog"  # events arrived faster than the disk took them
INTERNAL_ERROR = "internal_error"  # a bug in the stage (logged with its traceback)

SPOOL_BATCH = 1000  # events read back from the spool at a time
SETTLED_MAX_AGE = 1.0  # seconds a delivered event may stay in the spool file
SPILL_MIN = 10_000  # events that may wait for the spool write under way (at least max_len)
HOUSEKEEPING_INTERVAL = 0.25  # seconds between spool/log checks when nothing wakes us


class DropLog:
    """Logs lost events at most once per `interval`, with counts by reason: a dead endpoint
    under load must not turn into a log line per event."""

    def __init__(self, interval: float = 10.0) -> None:
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
            detail = f"; last failure: {self._example}" if self._example else ""
            log.warning("webhook: %d event(s) dropped (%s)%s", sum(self._pending.values()), counts, detail)
            self._pending.clear()
            self._example = ""
            self._last = now


class WebhookStage(BrokerHooks):
    """NanoMQ-compatible WebHook delivery, with a bounded queue, retries and an optional spool."""

    def __init__(self, config: WebhookConfig, registry) -> None:
        self.config = config
        self._rules = Rules(config.rules)
        self.metrics = WebhookMetrics(self._gauges)
        self._encode = payload_encoder(config.encoding, self.metrics)
        self._sender = Sender(config)
        self._queue = EventQueue(config.pool_size, config.queue.max_len)
        self._inflight: list[QueuedEvent | None] = [None] * config.pool_size
        self._workers = Pool(config.pool_size)
        self._spool: Spool | None = None
        self._spill: list[QueuedEvent] = []  # accepted for the spool, not written yet
        self._spill_max = max(config.queue.max_len, SPILL_MIN)
        self._spooled_backlog = 0  # events in the spool (or spill) not yet moved to memory
        self._replay_after = 0  # seq of the last spooled event moved to memory
        self._settled: list[int] = []  # seqs of spooled events delivered or dropped
        self._last_forget = 0.0
        self._wake = Event()
        self._housekeeper = None
        self._closing = False
        self._seq = 0
        self._accepting = False
        self._endpoint_down = False
        self._drops = DropLog()
        self._log_url = safe_url(config.url)
        self._requests_inflight = 0
        registry.register(self.metrics)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for warning in check_rules(self.config):
            log.warning("%s", warning)
        if self.config.queue.spool_dir:
            self._spool = Spool(self.config.queue.spool_dir)
            self._seq = self._spool.last_seq
            self._spooled_backlog = self._spool.rows
            if self._spool.rows:
                log.info("webhook: %d event(s) in the spool %s will be delivered first",
                         self._spool.rows, self._spool.path)
        for index in range(self.config.pool_size):
            self._workers.spawn(self._work, index)
        self._housekeeper = gevent.spawn(self._housekeep)
        self._accepting = True
        log.info("webhook: POSTing to %s with %d worker(s), queue %d, spool %s", self._log_url,
                 self.config.pool_size, self.config.queue.max_len, self.config.queue.spool_dir or "off")

    def stop(self, timeout: float) -> None:
        """Stop accepting, deliver what is queued for at most `timeout` seconds, then spool
        what is left (or count it as dropped)."""
        if not self._accepting:
            return
        self._accepting = False
        deadline = time.monotonic() + timeout
        log.info("webhook: draining %d queued event(s) for at most %.1f s", self._pending(), timeout)
        while self._pending() and time.monotonic() < deadline:
            self._wake.set()
            gevent.sleep(0.01)
        self._workers.kill(block=True, timeout=1.0)
        # Not killed: it may be inside a spool transaction running in a thread.
        self._closing = True
        self._wake.set()
        self._housekeeper.join()
        left = [item for item in self._inflight if item is not None] + self._queue.drain()
        self._inflight = [None] * self.config.pool_size
        if self._spool is not None:
            self._close_spool(left)
        elif left:
            self._drop(SHUTDOWN, len(left), "the drain time ran out")
        self._drops.flush(force=True)
        self._sender.close()

    def _close_spool(self, left: list[QueuedEvent]) -> None:
        unwritten = self._spill + [item for item in left if not item.spooled]
        self._spill = []
        try:
            self._spool.append(unwritten)
            self._spool.delete(self._settled)
            self._settled = []
            if self._spool.rows:
                log.info("webhook: %d event(s) kept in the spool for the next start", self._spool.rows)
        except Exception as exc:  # noqa: BLE001 - the disk's problem, counted and logged
            self._drop(SPOOL_ERROR, len(unwritten), f"spool: {exc}")
        finally:
            self._spool.close()

    def _pending(self) -> int:
        return self._queue.depth + self._spooled_backlog + sum(item is not None for item in self._inflight)

    # -- hooks (connection greenlets: enqueue only, never block, never raise) ------------------

    def on_client_connack(self, client: ClientInfo, reason_code: int) -> None:
        if self._rules.connack:
            self._accept(client.client_id, bodies.CONNACK, lambda: bodies.connack_body(client, reason_code))

    def on_client_disconnected(self, client: ClientInfo, reason: str) -> None:
        if self._rules.disconnected:
            self._accept(client.client_id, bodies.DISCONNECTED, lambda: bodies.disconnected_body(client, reason))

    def on_message_publish(self, client: ClientInfo | None, message: Message) -> None:
        if self._rules.publish(message.topic):
            self._accept(message.publisher_id, bodies.PUBLISH,
                         lambda: bodies.publish_body(message, self._encode(message.payload)))

    def _accept(self, key: str, event: str, build) -> None:
        try:
            if not self._accepting:
                self._drop(SHUTDOWN, 1, f"{event} after stop")
                return
            self._seq += 1
            item = QueuedEvent(self._seq, key, event, build())
            self.metrics.events[event] += 1
            if self._spool is not None and (self._spooled_backlog or self._endpoint_down or self._queue.full):
                self._to_spool(item)
            else:
                if self._queue.full:
                    self._drop(QUEUE_FULL, 1, "", self._queue.drop_oldest())
                self._queue.put(item)
        except Exception:  # noqa: BLE001 - a hook must never raise into the broker
            log.exception("webhook: could not accept a %s event", event)
            self._drop(INTERNAL_ERROR, 1)

    def _to_spool(self, item: QueuedEvent) -> None:
        if len(self._spill) >= self._spill_max:
            self._drop(SPOOL_BACKLOG, 1, "the disk is slower than the events")
            return
        if not self._spooled_backlog:
            log.info("webhook: %s; new events go to the spool %s until it is replayed",
                     "endpoint failing" if self._endpoint_down else "memory queue full", self._spool.path)
        self._spill.append(item)
        self._spooled_backlog += 1
        self._wake.set()

    def _drop(self, reason: str, count: int, detail: str = "", item: QueuedEvent | None = None) -> None:
        self.metrics.dropped[reason] += count
        if item is not None and item.spooled:
            self._settled.append(item.seq)
        self._drops.add(reason, count, detail)

    # -- delivery (one greenlet per partition) -------------------------------------------------

    def _work(self, index: int) -> None:
        channel = self._sender.channel()
        try:
            while True:
                item = self._queue.get(index)
                self._inflight[index] = item
                try:
                    self._deliver(channel, item)
                except Exception:  # noqa: BLE001 - a bug must cost one event, not the partition
                    log.exception("webhook: could not deliver a %s event", item.event)
                    self._drop(INTERNAL_ERROR, 1, "", item)
                self._inflight[index] = None
                if self._spooled_backlog and self._replay_room() > 0:
                    self._wake.set()
        finally:
            self._sender.release(channel)

    def _deliver(self, channel, item: QueuedEvent) -> None:
        retry = self.config.retry
        attempts = 0
        while True:
            attempts += 1
            self._requests_inflight += 1
            try:
                attempt = channel.post(item.body)
            finally:
                self._requests_inflight -= 1
            self.metrics.observe(item.event, attempt.seconds)
            if attempt.reason is None:
                self.metrics.requests[item.event, "delivered", ""] += 1
                if self._endpoint_down:
                    self._endpoint_down = False
                    log.info("webhook: endpoint %s answers again", self._log_url)
                    self._wake.set()
                if item.spooled:
                    self._settled.append(item.seq)
                return
            # With a spool nothing retryable is ever given up: it waits on disk instead.
            if attempt.retryable and (self._spool is not None or attempts < retry.max_attempts):
                self.metrics.requests[item.event, "retried", attempt.reason] += 1
                if not self._endpoint_down:
                    self._endpoint_down = True
                    log.warning("webhook: endpoint %s failing (%s); retrying with backoff", self._log_url,
                                attempt.detail)
                gevent.sleep(self._backoff(attempts, attempt.retry_after))
                continue
            self.metrics.requests[item.event, "failed", attempt.reason] += 1
            self._drop(RETRIES_EXHAUSTED if attempt.retryable else REJECTED, 1,
                       f"{item.event}: {attempt.detail} after {attempts} attempt(s)", item)
            return

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        retry = self.config.retry
        ceiling = min(retry.backoff_max, retry.backoff_min * 2 ** (attempts - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter: clients do not retry in step
        if retry_after is not None:
            delay = max(delay, min(retry_after, retry.backoff_max))
        return delay

    # -- spool and logs (one greenlet) ---------------------------------------------------------

    def _housekeep(self) -> None:
        while not self._closing:
            self._wake.wait(HOUSEKEEPING_INTERVAL)
            self._wake.clear()
            if self._closing:
                return
            if self._spool is not None:
                try:
                    self._write_spill()
                    self._replay()
                    self._forget_settled()
                except Exception as exc:  # noqa: BLE001 - keep running; what was lost is counted
                    log.error("webhook: spool %s: %s", self._spool.path, exc)
                    gevent.sleep(1.0)
            self._drops.flush()

    def _forget_settled(self) -> None:
        """Delete delivered (or dropped) events from the spool, in large batches: each delete is
        an fsync. Until then a crash means they are sent again (at least once, never lost)."""
        due = len(self._settled) >= SPOOL_BATCH or not self._spooled_backlog \
            or time.monotonic() - self._last_forget >= SETTLED_MAX_AGE
        if self._settled and due:
            settled, self._settled = self._settled, []
            self._last_forget = time.monotonic()
            self._spool.delete(settled)

    def _write_spill(self) -> None:
        while self._spill:
            batch, self._spill = self._spill, []
            try:
                self._spool.append(batch)
            except Exception as exc:  # noqa: BLE001
                self._spooled_backlog -= len(batch)
                self._drop(SPOOL_ERROR, len(batch), f"spool: {exc}")

    def _replay(self) -> None:
        """Move spooled events back to memory while the endpoint answers and memory has room."""
        room = self._replay_room()
        while self._spooled_backlog and not self._endpoint_down and room > 0 and not self._spill:
            items = self._spool.read_after(self._replay_after, min(room, SPOOL_BATCH))
            if not items:
                self._spooled_backlog = 0  # the count was off (a failed write): trust the disk
                return
            for item in items:
                self._queue.put(item)
            self._replay_after = items[-1].seq
            self._spooled_backlog -= len(items)
            room -= len(items)
            if not self._spooled_backlog:
                log.info("webhook: spool replayed; new events go to memory again")
            gevent.sleep(0)  # let the workers start on them

    def _replay_room(self) -> int:
        return max(1, self._queue.max_len // 2) - self._queue.depth

    # -- metrics and logs ----------------------------------------------------------------------

    def _gauges(self) -> tuple[int, int, int, int]:
        holding = sum(item is not None for item in self._inflight)
        spool = (self._spool.rows if self._spool is not None else 0) + len(self._spill)
        return self._queue.depth + holding, spool, self._requests_inflight, self.config.pool_size


def safe_url(url: str) -> str:
    """The URL without credentials or query, for logs (secrets never appear in them)."""
    parsed = urllib3.util.parse_url(url)
    return f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}{parsed.path or ''}"
