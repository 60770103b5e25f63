"""The store file: a corrupt or foreign one stops the start (one line naming it, exit 2);
NanoMQ's sqlite block puts it in mounted_file_path; its metrics carry store="persistence";
the start-up line says what was loaded."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def start(tmp_path, block: str) -> subprocess.CompletedProcess:
    conf = tmp_path / "nanomq.conf"
    conf.write_text(f'listeners.tcp {{ bind = "127.0.0.1:0" }}\n{block}\n')
    return subprocess.run([sys.executable, "-m", "appliance", "--conf", str(conf)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def corrupt(path: Path) -> None:
    path.write_bytes(b"\x13\x37 not sqlite at all " * 300)


def foreign(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 7")
        db.execute("CREATE TABLE photos (x)")


def _with_queue_batch(blob: bytes):
    def spoil(path: Path) -> None:
        from appliance.persistence.journal import TABLES
        from appliance.store.store import APPLICATION_ID

        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for statement in TABLES:
                db.execute(statement)
            db.execute("INSERT INTO persist_queue_batches VALUES (1, ?)", (blob,))
    return spoil


damaged_batch = _with_queue_batch(b"\x80\x05 cut short")
batch_naming_a_class = _with_queue_batch(pickle.dumps([Path("/etc/passwd")]))  # never loaded, let alone run


@pytest.mark.parametrize("spoil, expected", [(corrupt, "not a usable store"), (foreign, "another application"),
                                             (damaged_batch, "not a usable store"),
                                             (batch_naming_a_class, "not a usable store")])
def test_a_corrupt_or_foreign_store_is_one_line_naming_it_and_exit_2(tmp_path, spoil, expected):
    data = tmp_path / "data"
    data.mkdir()
    spoil(data / "persistence.db")
    done = start(tmp_path, f'persistence {{ dir = "{data}" }}')
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "persistence.dir" in lines[0] and str(data / "persistence.db") in lines[0] and expected in lines[0]


def test_a_dir_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    done = start(tmp_path, f'persistence {{ dir = "{tmp_path / "file"}" }}')
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "persistence.dir" in lines[0] and str(tmp_path / "file") in lines[0]


def test_nanomq_sqlite_block_keeps_retained_in_mounted_file_path(broker_factory, mqtt, tmp_path):
    block = f'sqlite {{ mounted_file_path = "{tmp_path}/", disk_cache_size = 102400 }}\n'
    broker = broker_factory(block)
    assert "sqlite.disk_cache_size" not in broker.logs()  # it bounds the bridges' disk queue: no warning
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("kept", b"across", qos=1, retain=True)
    pub.close()
    broker.kill()
    assert (tmp_path / "persistence.db").exists()
    broker = broker_factory(block)
    sub = mqtt(broker.port, "sub")
    sub.connect()
    sub.subscribe("kept", qos=1)
    assert sub.expect_message().payload == b"across"


def test_start_up_line_and_metrics_of_the_persistence_store(broker_factory, mqtt, tmp_path):
    block = f'persistence {{ dir = "{tmp_path / "data"}", sync = os }}\n'
    broker = broker_factory(block)
    pub = mqtt(broker.port, "pub")
    pub.connect()
    for n in range(3):
        pub.publish(f"m/{n}", b"x", qos=1, retain=True)
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples = {(s.name, s.labels.get("store")): s.value for family in text_string_to_metric_families(text)
               for s in family.samples}
    assert samples[("appliance_store_commits_total", "persistence")] >= 1
    assert samples[("appliance_store_size_bytes", "persistence")] > 0
    assert samples[("appliance_store_rows_per_commit_count", "persistence")] >= 1
    assert ("appliance_store_commit_seconds_bucket", "persistence") in samples
    pub.close()
    broker.kill()
    broker = broker_factory(block)
    line = broker.wait_for_log("persistence: loaded")
    assert "0 session(s)" in line and "3 retained message(s)" in line
