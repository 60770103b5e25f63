"""One SQLite file written by one thread, in group commits, with durability callbacks on the loop.

Owners (the WebHook spool, later sessions and retained messages) define their tables at
start-up, then queue changes with `write()` from the gevent loop; that costs a list append.
A writer greenlet hands everything queued since the last commit to a dedicated OS thread,
which runs it as one transaction and syncs once (`sync = fsync`: the WAL is fsync'd, the
change survives power loss; `sync = os`: written to the OS, it survives a crash of this
process only). While that thread writes, new changes pile up for the next commit, so the cost
of a sync is shared by every change that arrived meanwhile: group commit. SQLite and the sync
never run on the loop, so a slow disk delays durability, never MQTT traffic.

`when_durable(callback)` calls `callback` on the loop once every change queued before it is
committed. A commit that fails (a full disk) keeps its changes, in order, and is retried; the
failure is logged at most once per `LOG_INTERVAL` with counts, and callbacks wait until it
succeeds: nothing is reported durable that is not.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable

import gevent
from gevent.event import Event
from gevent.threadpool import ThreadPool

from .metrics import StoreMetrics

log = logging.getLogger("appliance.store")

SYNC_MODES = ("fsync", "os")
# Written into every store file we create, so a foreign SQLite file is refused, never changed.
APPLICATION_ID = 0x4E4D5141  # "NMQA"
RETRY_INTERVAL = 1.0  # seconds between attempts while commits fail
LOG_INTERVAL = 10.0  # seconds between log lines about failing commits


class StoreError(Exception):
    """The store file cannot be used: one line naming the path and the problem."""


class Store:
    """`Store(path, name, sync)` opens (or creates) the file; `define()` the tables, then
    `start()` the writer. `name` labels the metrics (`appliance_store_*{store=name}`)."""

    def __init__(self, path: str, name: str, sync: str = "fsync", registry=None,
                 retry_interval: float = RETRY_INTERVAL) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        self.path = path
        self.name = name
        self.sync = sync
        self._retry_interval = retry_interval
        self._db = _open(path, sync)
        self._changes: list[tuple[str, list]] = []  # (statement, rows) in the order queued
        self._queued = 0  # changes ever queued
        self._durable = 0  # changes ever committed
        self._waiters: deque[tuple[int, Callable[[], None]]] = deque()
        self._wake = Event()
        self._thread = ThreadPool(1)  # the one thread that touches the file after start()
        self._writer = None
        self._closing = False
        self._failures = _FailureLog(self)
        self.metrics = StoreMetrics(name, path, lambda: self._queued - self._durable)
        if registry is not None:
            registry.register(self.metrics)

    # -- start-up (before the loop serves anyone: these run on the caller) -------------------

    def define(self, *statements: str) -> None:
        """Create an owner's tables and indexes (`CREATE ... IF NOT EXISTS`), or migrate them."""
        try:
            with self._db:
                for statement in statements:
                    self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot set up the store: {exc}") from None

    def read(self, statement: str, params: tuple = ()) -> list[tuple]:
        """Rows from the file as it is, at start-up (before `start()`, on the caller)."""
        try:
            return self._db.execute(statement, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read the store: {exc}") from None

    def start(self) -> None:
        self._writer = gevent.spawn(self._write_loop)

    # -- the loop's side -----------------------------------------------------------------------

    def write(self, statement: str, params: tuple) -> None:
        """Queue one change (an INSERT, UPDATE or DELETE) for the next commit."""
        changes = self._changes
        if changes and changes[-1][0] is statement:
            changes[-1][1].append(params)
        else:
            changes.append((statement, [params]))
        self._queued += 1
        self._wake.set()

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call `callback` on the loop once every change queued so far is committed; at once
        when none is pending."""
        if self._durable >= self._queued:
            callback()
        else:
            self._waiters.append((self._queued, callback))

    def wait_durable(self) -> None:
        """Block this greenlet until every change queued so far is committed."""
        done = Event()
        self.when_durable(done.set)
        done.wait()

    def query(self, statement: str, params: tuple = ()) -> list[tuple]:
        """Rows, read on the writer's thread (the loop goes on meanwhile). Sees every committed
        change; changes still queued may not be visible yet (`wait_durable()` first)."""
        return self._thread.apply(lambda: self._db.execute(statement, params).fetchall())

    @property
    def pending(self) -> int:
        """Changes queued and not yet durable."""
        return self._queued - self._durable

    @property
    def failing(self) -> bool:
        """The last commit failed (and its changes wait for the next attempt)."""
        return self._failures.failing

    def close(self, timeout: float = 5.0) -> int:
        """Commit what is queued (for at most `timeout` seconds) and close the file; returns
        the number of changes that could not be committed (0 normally)."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout)
            self._writer.kill(block=True, timeout=1.0)
        elif self._changes:
            self._commit_now()
        lost = self._queued - self._durable
        if lost:
            log.error("store %s (%s): %d change(s) could not be written before closing: %s",
                      self.name, self.path, lost, self._failures.last or "out of time")
        self._thread.kill()
        self._db.close()
        return lost

    # -- the writer ----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            if not self._changes:
                if self._closing:
                    return
                self._wake.clear()
                self._wake.wait()
                continue
            if not self._commit_now() and not self._closing:
                gevent.sleep(self._retry_interval)
            elif self._failures.failing and self._closing:
                return  # one last attempt was made; close() reports what is left

    def _commit_now(self) -> bool:
        batch, self._changes = self._changes, []
        target = self._queued
        rows = sum(len(group) for _, group in batch)
        started = time.perf_counter()
        try:
            if self._writer is None:
                self._commit(batch, False)
            else:
                self._thread.apply(self._commit, (batch, self._failures.failing))
        except sqlite3.Error as exc:
            self._changes = batch + self._changes  # kept in order, tried again
            self.metrics.errors += 1
            self._failures.failed(exc)
            return False
        self.metrics.commits += 1
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.metrics.rows_per_commit.observe(rows)
        self._failures.succeeded()
        self._durable = target
        self._release()
        return True

    def _commit(self, batch: list[tuple[str, list]], after_failure: bool) -> None:
        """On the writer's thread: one transaction for the whole batch, one sync."""
        db = self._db
        if after_failure:
            # A full disk: move the WAL into the database and shrink it, which may free the
            # room this transaction needs.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement, rows in batch:
                db.executemany(statement, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _release(self) -> None:
        waiters, durable = self._waiters, self._durable
        while waiters and waiters[0][0] <= durable:
            _, callback = waiters.popleft()
            try:
                callback()
            except Exception:  # noqa: BLE001 - one owner's bug must not stop the others' acks
                log.exception("store %s: a durability callback failed", self.name)


class _FailureLog:
    """Failing commits, logged at most once per LOG_INTERVAL with counts, and the recovery."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.failing = False
        self.last = ""
        self._since_log = 0
        self._total = 0
        self._logged_at = float("-inf")

    def failed(self, exc: Exception) -> None:
        self.failing = True
        self.last = str(exc) or type(exc).__name__
        self._since_log += 1
        self._total += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL:
            store = self._store
            log.error("store %s (%s): %d commit(s) failed in the last %.0f s, %d change(s) waiting, "
                      "retrying every %.1f s: %s", store.name, store.path, self._since_log, LOG_INTERVAL,
                      store.pending, store._retry_interval, self.last)
            self._logged_at = now
            self._since_log = 0

    def succeeded(self) -> None:
        if self.failing:
            log.warning("store %s (%s): writing again after %d failed commit(s)", self._store.name,
                        self._store.path, self._total)
            self.failing = False
            self._total = self._since_log = 0
            self._logged_at = float("-inf")


def _open(path: str, sync: str) -> sqlite3.Connection:
    directory = os.path.dirname(path) or "."
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise StoreError(f"{directory}: is not a directory (the store {os.path.basename(path)} goes there)")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{directory}: cannot create the store's directory: {exc.strerror}") from None
    if os.path.isdir(path):
        raise StoreError(f"{path}: is a directory, not a store file")
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the store: {exc}") from None
    try:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        if application_id not in (0, APPLICATION_ID):
            raise StoreError(f"{path}: not this broker's store (a SQLite file of another application); "
                             "move it away or point the directory elsewhere")
        # application_id 0 with tables: a spool written before stores were stamped; adopted.
        if db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise StoreError(f"{path}: the file system does not support SQLite's WAL mode")
        db.execute(f"PRAGMA synchronous={'FULL' if sync == 'fsync' else 'NORMAL'}")
        if application_id == 0:
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StoreError(f"{path}: not a usable store ({exc}); move it away to start empty") from None
    except StoreError:
        db.close()
        raise
    return db
