"""The chart's config-watcher sidecar, run as the chart runs it, against the real broker: a
changed file in the watched directory makes the broker reload it, clients stay connected, and
rotated http_server credentials do not lock the watcher out of the next reload."""

import os
import socket
import subprocess
import sys

from tests.conftest import BASE_CONFIG, ROOT
from tests.reload.reload_helpers import reload_lines, wait_ready

WATCHER = ROOT / "helm" / "nanomq-appliance" / "files" / "config_watcher.py"


def free_port() -> int:
    # The watcher reaches the broker at the port its config names, so it cannot be 0 here.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_watcher_makes_the_broker_reload_changed_files(broker_factory, mqtt, tmp_path):
    (tmp_path / "nanomq_acl.conf").write_text("rules = [ {permit = allow} ]\n")
    base = BASE_CONFIG.replace("port = 0", f"port = {free_port()}")
    broker = broker_factory('auth { acl = {include "nanomq_acl.conf"} }\n', base=base)
    wait_ready(broker)
    client = mqtt(broker.port, "kept")
    client.connect()
    assert client.subscribe("secret/a", qos=1) == [1]
    env = {**os.environ, "WATCH_DIRS": str(tmp_path), "WATCH_INTERVAL": "0.2",
           "NANOMQ_CONF_PATH": str(broker.config_path), "PYTHONPATH": str(ROOT)}
    watcher = subprocess.Popen([sys.executable, str(WATCHER)], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "watching" in watcher.stdout.readline()
        (tmp_path / "nanomq_acl.conf").write_text(
            'rules = [ {permit = deny, topics = ["secret/#"]}, {permit = allow} ]\n')
        assert "reloaded" in watcher.stdout.readline()
        assert broker.wait_for(lambda: any("changed auth.acl" in line for line in reload_lines(broker)))
        assert client.subscribe("secret/b", qos=1) == [0x80]
        # Rotate the API password: this reload goes with the old one, the next with the new one.
        text = broker.config_path.read_text()
        broker.config_path.write_text(text.replace('password = "test-secret"', 'password = "rotated-1"'))
        assert "reloaded" in watcher.stdout.readline()
        (tmp_path / "nanomq_acl.conf").write_text("rules = [ {permit = allow} ]\n")
        assert "reloaded" in watcher.stdout.readline()
        assert client.subscribe("secret/c", qos=1) == [1]
        assert client.disconnects.empty()
    finally:
        watcher.terminate()
        watcher.wait(5)
