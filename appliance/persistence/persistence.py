"""Persistence: the broker's durable state in the shared store, read back at start-up.

`Persistence(config, registry)` opens `<dir>/persistence.db` (a `Store` of its own, so its
metrics carry `store="persistence"`), `load(broker, ...)` puts back what the file holds and
gives the broker the journal that records every change from then on, and the app lists it
among the `Durable`s: a QoS 1/2 PUBLISH is acknowledged once what it changed here is
committed. `close()` at shutdown commits the rest.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict

from ..broker.session import NEVER_EXPIRES, Session, SubscriptionOptions
from ..config.errors import StartupError
from ..config.model import PersistenceConfig
from ..store import Store, StoreError
from .codec import MESSAGE_COLUMNS, load_will, message_from
from .journal import TABLES, StoreJournal
from .queue import LoadedQueue, QueueJournal

log = logging.getLogger("appliance.persistence")

FILE_NAME = "persistence.db"
HEARTBEAT = 5.0  # seconds: how often the store learns the broker is alive (a crash's downtime starts there)
CLOSE_TIMEOUT = 10.0
# A commit waits this long after the first change, so that a message delivered to a connected
# subscriber and acknowledged meanwhile costs no row at all (it adds as much to PUBACK latency).
LINGER = 0.001


class Persistence:
    def __init__(self, config: PersistenceConfig, registry=None) -> None:
        self.path = os.path.join(config.dir, FILE_NAME)
        self._key = config.dir_key  # the config key errors name
        try:
            self.store = Store(self.path, "persistence", config.sync, registry, linger=LINGER)
            self.store.define(*TABLES)
        except StoreError as error:
            raise StartupError(self._key, str(error)) from None
        self.journal: StoreJournal | None = None
        self.mark = self.store.generation  # the Durable's mark: asked once per QoS 1/2 PUBLISH
        self._heartbeat = None
        self._timers = None

    # -- start-up ----------------------------------------------------------------------------

    def load(self, broker, stats, max_queue_len: int, max_queue_bytes: int) -> str:
        """Put the file's sessions and retained messages into `broker` and give it the journal;
        returns (and logs) one line of what was loaded."""
        started = time.perf_counter()
        try:
            summary = self._load(broker, stats, max_queue_len, max_queue_bytes)
        except StoreError as error:
            raise StartupError(self._key, str(error)) from None
        except (ValueError, TypeError, KeyError) as error:  # rows we did not write
            raise StartupError(self._key, f"{self.path}: not a usable store (a row cannot be read: "
                                                  f"{error}); move it away to start empty") from None
        line = f"persistence: loaded {summary} from {self.path} in {time.perf_counter() - started:.2f} s"
        log.info("%s", line)
        return line

    def _load(self, broker, stats, max_queue_len: int, max_queue_bytes: int) -> str:
        read = self.store.read
        # Rows of sessions that are gone (cannot happen unless the file was changed by hand).
        self.store.define(*(f"DELETE FROM {table} WHERE client_id NOT IN (SELECT client_id FROM persist_sessions)"
                            for table in ("persist_subscriptions", "persist_incoming")))
        now = time.time()
        self.store.define(f"DELETE FROM persist_retained WHERE expires <= {now!r}")  # expired while kept or down
        alive = dict(read("SELECT name, value FROM persist_meta")).get("alive", now)
        retained = 0
        for row in read(f"SELECT {MESSAGE_COLUMNS} FROM persist_retained"):
            message = message_from(row)
            if message.expires_at is None or message.expires_at > time.monotonic():
                broker.restore_retained(message)
                retained += 1
        subscriptions = defaultdict(dict)
        for client_id, topic_filter, qos, no_local, rap, identifier in read(
                "SELECT client_id, topic_filter, qos, no_local, retain_as_published, identifier "
                "FROM persist_subscriptions"):
            subscriptions[client_id][topic_filter] = SubscriptionOptions(qos, bool(no_local), bool(rap), identifier)
        session_rows = read("SELECT client_id, username, expiry, connected, disconnected_at, will, will_due "
                            "FROM persist_sessions")
        queue = LoadedQueue.read(self.store, {row[0] for row in session_rows})
        inflight, pending = defaultdict(list), defaultdict(list)
        for delivery in queue.deliveries:
            row = delivery.key
            if row.packet_id is None:
                pending[row.client_id].append(delivery)
            else:
                inflight[row.client_id].append((row.packet_id, delivery))
        incoming = defaultdict(set)
        for client_id, packet_id in read("SELECT client_id, packet_id FROM persist_incoming"):
            incoming[client_id].add(packet_id)
        owners = {}
        sessions = 0
        for client_id, username, expiry, connected, disconnected_at, will_text, will_due in session_rows:
            expiry = NEVER_EXPIRES if expiry is None else expiry
            session = Session(client_id, stats, max_queue_len, max_queue_bytes, expiry_interval=expiry, owner=username)
            session.subscriptions = subscriptions.pop(client_id, {})
            session.restore(inflight.pop(client_id, []), pending.pop(client_id, []), incoming.pop(client_id, set()))
            # Connected when the broker died: the connection ended then (at the last heartbeat).
            gone_at = alive if connected else (disconnected_at or alive)
            expires_in = None if expiry == NEVER_EXPIRES else gone_at + expiry - now
            will = load_will(will_text)
            will_in = 0.0
            if will is not None:
                if connected:  # the will of a connection the crash ended: due as for any lost connection
                    delay = will.delay if expiry else 0
                    if expiry != NEVER_EXPIRES:
                        delay = min(delay, expiry)
                    will_in = gone_at + delay - now
                else:
                    will_in = (will_due or now) - now
            broker.restore_session(session, expires_in, will, will_in)
            owners[client_id] = username
            sessions += 1
        queue_journal = QueueJournal(self.store, queue)
        self.journal = StoreJournal(self.store, queue_journal, owners)
        self.store.register(self.journal)
        self.store.register(queue_journal)
        broker.set_journal(self.journal)
        return (f"{sessions} session(s), {len(queue.deliveries)} queued or in-flight message(s), "
                f"{retained} retained message(s)")

    # -- running -----------------------------------------------------------------------------

    def start(self, timers) -> None:
        self._timers = timers
        self.store.start()
        # What fell due while the broker was down (sessions expired, wills whose delay ran
        # out) happens now, before any client connects and could resume an expired session.
        timers.sweep()
        self._beat()

    def _beat(self) -> None:
        self.journal.heartbeat()
        self._heartbeat = self._timers.call_later(HEARTBEAT, self._beat)

    def when_durable(self, callback) -> None:
        self.store.when_durable(callback)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> int:
        """Commit everything (the broker has detached every connection by now) and close."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self.journal is not None:
            self.journal.heartbeat()
        return self.store.close(timeout)
