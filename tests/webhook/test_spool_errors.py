"""A spool the broker cannot use stops the start with one line naming the path, exit 2, never a
traceback and never a silent fresh start."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(tmp_path, spool_dir) -> subprocess.CompletedProcess:
    conf = tmp_path / "nanomq.conf"
    conf.write_text(f"""
listeners.tcp {{ bind = "127.0.0.1:0" }}
http_server {{ bind = "127.0.0.1", port = 0 }}
webhook {{
  url = "http://127.0.0.1:9/hook"
  queue {{ spool_dir = "{spool_dir}" }}
  events = [ {{ event = "on_message_publish" }} ]
}}
""")
    return subprocess.run([sys.executable, "-m", "appliance", "--conf", str(conf)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def corrupt(directory: Path) -> None:
    (directory / "webhook-spool.sqlite3").write_bytes(b"\x13\x37 not sqlite at all " * 300)


def foreign(directory: Path) -> None:
    with sqlite3.connect(directory / "webhook-spool.sqlite3") as db:
        db.execute("PRAGMA application_id = 7")
        db.execute("CREATE TABLE photos (x)")


@pytest.mark.parametrize("spoil, expected", [(corrupt, "not a usable store"), (foreign, "another application")])
def test_a_corrupt_or_foreign_spool_file_is_one_line_and_exit_2(tmp_path, spoil, expected):
    spool = tmp_path / "spool"
    spool.mkdir()
    spoil(spool)
    done = start(tmp_path, spool)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(spool / "webhook-spool.sqlite3") in lines[0] and expected in lines[0]


def test_a_spool_dir_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    done = start(tmp_path, tmp_path / "file")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "nanomq.conf:" in lines[0] and "webhook.queue.spool_dir" in lines[0]
    assert f"{tmp_path / 'file'} is a file, not a directory" in lines[0]
