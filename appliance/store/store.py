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
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import gevent
from gevent.event import Event
from gevent.threadpool import ThreadPool

from .metrics import StoreMetrics

log = logging.getLogger("appliance.store")

SYNC_MODES = ("fsync", "os")
# Written into every store file we create, so a foreign SQLite file is refused, never changed.
APPLICATION_ID = 0x4E4D5141  # "NMQA"
RETRY_INTERVAL = 1.0  # seconds between attempts while commits fail
# Changes that add rows wait while the disk has less room than this beyond what the WAL and
# a checkpoint need: deletes always find room, so a full disk never keeps delivered rows.
FREE_MARGIN = 256 * 1024
ROOMY = 16 * 1024 * 1024  # more free than this: no need to weigh the batch
SQLITE_FULL = 13
LOG_INTERVAL = 10.0  # seconds between log lines about failing commits
SWITCH_INTERVAL = 0.0002  # seconds a thread may hold the GIL while the writer's thread waits for it


class StoreError(Exception):
    """The store file cannot be used: one line naming the path and the problem."""


class ChangeSource(Protocol):
    """An owner that holds its own changes until the writer takes them, so it can cancel a
    change that a later one makes unnecessary (the spool's insert of an event already
    delivered) and order them as it likes. Changes to different rows only."""

    pending: int  # changes held now

    def take(self) -> list[tuple[str, list]]:
        """Every change held, as (statement, rows) groups in commit order; holds none after."""

    def restore(self, statement: str, rows: list) -> None:
        """Rows of a group taken that could not be committed: hold them again."""


class GivenBack:
    """For a source whose changes need no merging: the groups of a commit that failed, held
    again by `restore` and handed out first, in order, by `take` (before anything changed
    since), so the file moves from one state the source had to a later one."""

    __slots__ = ("groups", "rows")

    def __init__(self) -> None:
        self.groups: list[tuple[str, list]] = []
        self.rows = 0

    def restore(self, statement: str, rows: list) -> None:
        self.groups.append((statement, rows))
        self.rows += len(rows)

    def take(self) -> list[tuple[str, list]]:
        groups = self.groups
        self.groups, self.rows = [], 0
        return groups


class _Log:
    """The changes queued with `Store.write()`: kept and committed in the order written."""

    def __init__(self) -> None:
        self.groups: list[tuple[str, list]] = []
        self.written = 0
        self.given_back = GivenBack()
        self.restore = self.given_back.restore

    @property
    def pending(self) -> int:
        return self.written + self.given_back.rows

    def add(self, statement: str, params: tuple) -> None:
        groups = self.groups
        if groups and groups[-1][0] is statement:
            groups[-1][1].append(params)
        else:
            groups.append((statement, [params]))
        self.written += 1

    def take(self) -> list[tuple[str, list]]:
        taken = self.given_back.take() + self.groups
        self.groups, self.written = [], 0
        return taken


class Store:
    """`Store(path, name, sync)` opens (or creates) the file; `define()` the tables, then
    `start()` the writer. `name` labels the metrics (`appliance_store_*{store=name}`)."""

    def __init__(self, path: str, name: str, sync: str = "fsync", registry=None,
                 retry_interval: float = RETRY_INTERVAL, linger: float = 0.0) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        self.path = path
        self.name = name
        self.sync = sync
        self._retry_interval = retry_interval
        # Seconds a commit waits after the first change: changes undone meanwhile (a queued
        # message its subscriber already acknowledged) are never written at all.
        self._linger = linger
        self._db = _open(path, sync)
        self._log = _Log()
        self._sources: list[ChangeSource] = [self._log]
        # Generations: every change made while `_dirty` goes into commit number _taken + 1.
        self._dirty = False
        self._taken = 0  # the last generation handed to the writer's thread
        self._done = 0  # the last generation entirely committed
        self._in_commit = 0  # changes of generation `_taken` not yet committed
        self._waiters: deque[tuple[int, Callable[[], None]]] = deque()
        self._wake = Event()
        self._thread = ThreadPool(1)  # the one thread that touches the file after start()
        self._writer = None
        self._closing = False
        self._failures = _FailureLog(self)
        self.metrics = StoreMetrics(name, path, lambda: self.pending)
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

    def register(self, source: ChangeSource) -> None:
        """An owner whose changes the writer takes at each commit (it calls `changed()`)."""
        self._sources.append(source)

    def start(self) -> None:
        # The writer's thread gives up the GIL inside SQLite for every row and must win it
        # back from the loop: with Python's default 5 ms switch interval a busy loop keeps it
        # for up to 5 ms each time, and a commit of a few hundred rows takes ages.
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self._writer = gevent.spawn(self._write_loop)

    # -- the loop's side -----------------------------------------------------------------------

    def write(self, statement: str, params: tuple) -> None:
        """Queue one change (an INSERT, UPDATE or DELETE) for the next commit, in order."""
        self._log.add(statement, params)
        self.changed()

    def changed(self) -> None:
        """A source holds new changes: they go into the next commit."""
        if not self._dirty:
            self._dirty = True
            self._wake.set()

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call `callback` on the loop once every change made so far is committed; at once
        when none is pending."""
        self.when_committed(self.generation(), callback)

    def generation(self) -> int:
        """The commit that will hold every change made so far (for `when_committed`)."""
        return self._taken + 1 if self._dirty else self._taken

    def committed(self, generation: int) -> bool:
        return generation <= self._done

    def when_committed(self, generation: int, callback: Callable[[], None]) -> None:
        """Call `callback` once commit `generation` (and every one before it) is durable."""
        if generation <= self._done:
            callback()
        else:
            self._waiters.append((generation, callback))

    def wait_durable(self, timeout: float | None = None, generation: int | None = None) -> bool:
        """Block this greenlet until every change made so far (or commit `generation`) is
        durable (True), or for at most `timeout` seconds (False)."""
        done = Event()
        self.when_committed(self.generation() if generation is None else generation, done.set)
        return done.wait(timeout)

    def query(self, statement: str, params: tuple = ()) -> list[tuple]:
        """Rows, read on the writer's thread (the loop goes on meanwhile). Sees every committed
        change; changes still pending may not be visible yet (`wait_durable()` first)."""
        return self._run(lambda: self._db.execute(statement, params).fetchall())

    @property
    def pending(self) -> int:
        """Changes made and not yet durable."""
        return self._in_commit + sum(source.pending for source in self._sources)

    @property
    def failing(self) -> bool:
        """The last commit failed (and its changes wait for the next attempt)."""
        return self._failures.failing

    def close(self, timeout: float = 5.0) -> int:
        """Commit what is pending (for at most `timeout` seconds) and close the file; returns
        the number of changes that could not be committed (0 normally)."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout)
            self._writer.kill(block=True, timeout=1.0)
        elif self._dirty:
            self._commit_generation()
        lost = self.pending
        if lost:
            log.error("store %s (%s): %d change(s) could not be written before closing: %s",
                      self.name, self.path, lost, self._failures.last or "out of time")
        self._thread.kill()
        self._db.close()
        return lost

    # -- the writer ----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            if not self._dirty:
                if self._closing:
                    return
                self._wake.clear()
                self._wake.wait()
                if self._linger and not self._closing:
                    gevent.sleep(self._linger)
                continue
            if self._commit_generation():
                continue
            if self._closing:
                return  # one last attempt was made; close() reports what is left
            gevent.sleep(self._retry_interval)

    def _commit_generation(self) -> bool:
        self._dirty = False
        self._taken += 1
        batch = [(source, statement, rows) for source in self._sources
                 for statement, rows in source.take() if rows]
        self._in_commit = sum(len(rows) for _, _, rows in batch)
        started = time.perf_counter()
        try:
            self._run(self._commit, [(statement, rows) for _, statement, rows in batch],
                      self._failures.failing)
        except sqlite3.Error as exc:
            self.metrics.errors += 1
            self._failures.failed(exc)
            if _full(exc):
                self._commit_what_fits(batch)
            else:
                for source, statement, rows in batch:
                    source.restore(statement, rows)
            self._in_commit = 0
            self._dirty = True
            return False
        self.metrics.commits += 1
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.metrics.rows_per_commit.observe(self._in_commit)
        self._in_commit = 0
        if self._failures.failing:
            self._failures.succeeded()
        self._done = self._taken
        self._release()
        return True

    def _commit_what_fits(self, batch) -> None:
        """On a full disk: commit group by group, halving a group that does not fit, so the
        changes that free room (a source's deletes, which it gives first) are written; each
        source gets back what was not, and nothing of its after the first group that failed."""
        stuck: set[int] = set()
        for source, statement, rows in batch:
            done = 0 if id(source) in stuck else self._commit_prefix(statement, rows)
            if done < len(rows):
                source.restore(statement, rows[done:])
                stuck.add(id(source))

    def _commit_prefix(self, statement: str, rows: list) -> int:
        try:
            self._run(self._commit, [(statement, rows)], False)
            self.metrics.commits += 1
            self.metrics.rows_per_commit.observe(len(rows))
            return len(rows)
        except sqlite3.Error as exc:
            if len(rows) == 1 or not _full(exc):
                return 0
        half = len(rows) // 2
        done = self._commit_prefix(statement, rows[:half])
        return done if done < half else half + self._commit_prefix(statement, rows[half:])

    def _run(self, function, *args):
        """`function(*args)` on the writer's thread once started (the calling greenlet waits,
        the loop does not); its exception is raised here, never printed by the thread pool."""
        if self._writer is None:
            return function(*args)

        def guarded():
            try:
                return True, function(*args)
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                return False, exc

        ok, value = self._thread.apply(guarded)
        if not ok:
            raise value
        return value

    def _commit(self, batch: list[tuple[str, list]], after_failure: bool) -> None:
        """On the writer's thread: one transaction for the whole batch, one sync."""
        db = self._db
        if after_failure:
            # Move the WAL into the database and shrink it: after a full disk this may free
            # the room the transaction needs.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if not all(statement.lstrip()[:6].upper() == "DELETE" for statement, _ in batch):
            self._check_room(batch)
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement, rows in batch:
                db.executemany(statement, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _check_room(self, batch: list[tuple[str, list]]) -> None:
        """Refuse (as a full disk) a transaction that could leave too little room for the
        deletes and the checkpoint after it: in WAL mode deleting needs room too."""
        stats = os.statvfs(os.path.dirname(self.path) or ".")
        free = stats.f_bavail * stats.f_frsize
        if free >= ROOMY:
            return
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        free += self._db.execute("PRAGMA freelist_count").fetchone()[0] * page_size
        try:
            wal = os.path.getsize(self.path + "-wal")
        except OSError:
            wal = 0
        size = sum(len(value) for _, rows in batch for row in rows for value in row
                   if isinstance(value, (bytes, str))) + 64 * sum(len(rows) for _, rows in batch)
        needed = 2 * size + wal + FREE_MARGIN
        if free < needed:
            error = sqlite3.OperationalError(f"database or disk is full (kept {needed // 1024} KiB free for "
                                             f"deletes, {free // 1024} KiB left)")
            error.sqlite_errorcode = SQLITE_FULL
            raise error

    def _release(self) -> None:
        waiters, done = self._waiters, self._done
        while waiters and waiters[0][0] <= done:
            _, callback = waiters.popleft()
            try:
                callback()
            except Exception:  # noqa: BLE001 - one owner's bug must not stop the others' acks
                log.exception("store %s: a durability callback failed", self.name)


def _full(exc: Exception) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL or "full" in str(exc)


class _FailureLog:
    """Failing commits, logged at most once per LOG_INTERVAL with counts, and the recovery."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.failing = False
        self.last = ""
        self._since_log = 0
        self._total = 0
        self._logged_at = float("-inf")
        self._recovered_at = float("-inf")

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
        """A commit went through after failures; said at most once per LOG_INTERVAL too (a
        nearly full disk can flap)."""
        self.failing = False
        now = time.monotonic()
        if now - self._recovered_at >= LOG_INTERVAL:
            log.warning("store %s (%s): writing again after %d failed commit(s)", self._store.name,
                        self._store.path, self._total)
            self._recovered_at = now
            self._total = 0


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
