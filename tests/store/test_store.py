"""The shared durable store: group commit off the loop, durability callbacks on the loop, a
failing disk that loses nothing and says so, and files it must refuse."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import gevent
import pytest
from gevent.event import Event
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from appliance.store import Store, StoreError

ROOT = Path(__file__).resolve().parents[2]
INSERT = "INSERT INTO t (k, v) VALUES (?, ?)"
DELETE = "DELETE FROM t WHERE k = ?"


def open_store(path: Path, sync: str = "fsync", registry=None, **options) -> Store:
    store = Store(str(path / "s.sqlite3"), "test", sync, registry, **options)
    store.define("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    return store


def samples(registry) -> dict:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_thousand_changes_in_one_loop_turn_are_one_commit_and_one_callback(tmp_path):
    registry = CollectorRegistry()
    store = open_store(tmp_path, registry=registry)
    store.start()
    for k in range(1000):
        store.write(INSERT, (k, f"v{k}"))
    done = Event()
    store.when_durable(done.set)
    assert store.pending == 1000
    assert done.wait(10)
    metrics = samples(registry)
    assert metrics[("appliance_store_commits_total", (("store", "test"),))] == 1
    assert metrics[("appliance_store_rows_per_commit_sum", (("store", "test"),))] == 1000
    assert metrics[("appliance_store_commit_seconds_count", (("store", "test"),))] == 1
    assert metrics[("appliance_store_size_bytes", (("store", "test"),))] > 0
    assert store.close() == 0
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1000


def test_when_durable_with_nothing_pending_calls_back_at_once(tmp_path):
    store = open_store(tmp_path)
    store.start()
    called = []
    store.when_durable(lambda: called.append(True))
    assert called == [True]
    store.close()


def test_callbacks_run_on_the_loop_in_order_and_the_loop_runs_during_the_commit(tmp_path):
    store = open_store(tmp_path)
    store.start()
    loop_thread = threading.get_ident()
    order, turns = [], []
    spinning = True

    def spin():
        while spinning:
            turns.append(1)
            gevent.sleep(0)

    spinner = gevent.spawn(spin)
    gevent.sleep(0)
    for batch in range(3):
        for k in range(200):
            store.write(INSERT, (batch * 1000 + k, "x"))
        store.when_durable(lambda batch=batch: order.append((batch, threading.get_ident())))
        gevent.sleep(0)
    turns.clear()
    store.wait_durable()
    spinning = False
    spinner.join()
    assert order == [(0, loop_thread), (1, loop_thread), (2, loop_thread)]
    assert turns, "the loop was blocked while the writer committed"
    store.close()


def test_order_of_changes_is_kept_within_and_across_commits(tmp_path):
    store = open_store(tmp_path)
    store.start()
    store.write(INSERT, (1, "a"))
    store.write(DELETE, (1,))
    store.write(INSERT, (1, "b"))
    store.wait_durable()
    store.write(DELETE, (1,))
    store.write(INSERT, (1, "c"))
    store.wait_durable()
    assert store.query("SELECT v FROM t") == [("c",)]
    store.close()


SCRIPT = textwrap.dedent("""
    import sys
    from gevent import monkey; monkey.patch_all()
    import gevent
    from appliance.store import Store
    store = Store(sys.argv[1], "crash", sys.argv[2])
    store.define("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    store.start()
    k = 0
    while True:
        for _ in range(50):
            k += 1
            store.write("INSERT INTO t (k, v) VALUES (?, ?)", (k, "x" * 100))
        store.when_durable(lambda k=k: print(k, flush=True))
        gevent.sleep(0.001)
""")


@pytest.mark.parametrize("sync", ["fsync", "os"])
def test_kill_9_keeps_every_change_reported_durable(tmp_path, sync):
    path = tmp_path / "s.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path), sync], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    durable = 0
    for line in proc.stdout:
        durable = int(line)
        if durable >= 3000:
            break
    proc.kill()
    proc.wait()
    assert durable >= 3000
    with sqlite3.connect(path) as db:
        rows = [k for (k,) in db.execute("SELECT k FROM t ORDER BY k")]
    assert rows[:durable] == list(range(1, durable + 1))  # every reported change, no gap


def test_a_full_disk_keeps_changes_waiting_logs_once_and_recovers(tmp_path, caplog):
    registry = CollectorRegistry()
    store = open_store(tmp_path, registry=registry, retry_interval=0.01)
    store.start()
    page_size = store.query("PRAGMA page_size")[0][0]
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages + 2}")  # the disk is (almost) full
    caplog.set_level(logging.INFO, logger="appliance.store")
    for k in range(2000):
        store.write(INSERT, (k, "y" * 200))  # needs far more than 2 pages of page_size
    durable = Event()
    store.when_durable(durable.set)
    labels = (("store", "test"),)
    while samples(registry).get(("appliance_store_commit_errors_total", labels), 0) < 5:
        gevent.sleep(0.01)
    # What fits is written; the rest waits, and so does the callback.
    assert not durable.is_set() and store.failing and 0 < store.pending <= 2000
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1 and "full" in failures[0].getMessage() and "2000 change(s) waiting" in \
        failures[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert page_size > 0
    store.query("PRAGMA max_page_count = 1073741823")  # room again
    assert durable.wait(10)
    assert not store.failing
    assert any("writing again" in r.getMessage() for r in caplog.records)
    assert store.query("SELECT COUNT(*) FROM t") == [(2000,)]
    store.close()


def test_close_commits_what_is_queued(tmp_path):
    store = open_store(tmp_path)
    store.start()
    for k in range(10):
        store.write(INSERT, (k, "z"))
    assert store.close() == 0
    reopened = open_store(tmp_path)
    assert reopened.read("SELECT COUNT(*) FROM t") == [(10,)]
    reopened.close()


def test_a_corrupt_file_is_one_line_naming_the_path(tmp_path):
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(StoreError) as error:
        open_store(tmp_path)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message and "move it away" in message


def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "s.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 12345")
        db.execute("CREATE TABLE theirs (x)")
    with pytest.raises(StoreError, match="another application"):
        open_store(tmp_path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == 12345
        assert db.execute("PRAGMA journal_mode").fetchone()[0] != "wal"


def test_a_directory_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "notadir").write_text("x")
    with pytest.raises(StoreError, match="is not a directory"):
        Store(str(tmp_path / "notadir" / "s.sqlite3"), "test")
