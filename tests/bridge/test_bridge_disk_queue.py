"""The disk queue (NanoMQ's `sqlite { ... }` block): QoS 1/2 messages the appliance acknowledged
while the upstream was down are on disk, survive a restart (SIGTERM) and a crash (kill -9),
and reach a real mosquitto upstream after the restart, in order, none lost; the disk bound
drops the oldest first and counts it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.bridge.conftest import free_port
from tests.bridge.metrics import bridge_metrics
from tests.bridge.test_bridge_mosquitto import bridge_block, connected
from tests.bridge.test_bridge_outage import Collector, publish_stream
from tests.conftest import BASE_CONFIG, ROOT, TIMEOUT


def disk_bridge(port: int, directory, disk_cache_size: int = 102400) -> str:
    return bridge_block("up", port, 4, """
 forwards = [ { local_topic = "d/#", qos = 1 } ]
 max_send_queue_len = 100000
""") + f'sqlite {{ disk_cache_size = {disk_cache_size}, mounted_file_path = "{directory}" }}\n'


def upstream_down_with_a_collector(tmp_path, mosquitto_factory) -> tuple:
    """mosquitto with a persistent-session collector on d/#, then stopped (SIGTERM saves the
    session, so what the collector misses is the bridge's fault alone)."""
    upstream = mosquitto_factory(extra=f"persistence true\npersistence_location {tmp_path}/\nautosave_interval 0\n")
    collector = Collector(upstream.port, "d/#")
    collector.connect()
    upstream.proc.send_signal(signal.SIGTERM)
    upstream.proc.wait(TIMEOUT)
    collector.close()
    return upstream, collector


@pytest.mark.parametrize("stop", ["sigterm", "kill -9"])
def test_queued_messages_survive_a_restart_and_arrive_in_order(stop, tmp_path, mosquitto_factory, broker_factory):
    upstream, collector = upstream_down_with_a_collector(tmp_path, mosquitto_factory)
    store_dir = tmp_path / "store"
    config = disk_bridge(upstream.port, store_dir)
    count = 500
    try:
        first = broker_factory(config)
        first.wait_for_log(r"bridge up: 127\.0\.0\.1:\d+: .*retrying")  # the upstream is down
        publish_stream(first.port, count, 2000, "d/seq")  # returns once every PUBACK is in
        if stop == "sigterm":
            assert bridge_metrics(first)["appliance_bridge_queue_depth"] == count
            assert first.stop(signal.SIGTERM) == 0
            first.wait_for_log(rf"bridge up: {count} message\(s\) kept on disk")
            assert "lost" not in first.logs()
        else:
            first.kill()  # at once: acknowledged means on disk, nothing may depend on a clean stop

        upstream.start()
        collector.connect()
        second = broker_factory(config)
        second.wait_for_log(rf"bridge up: {count} message\(s\) from the disk queue")
        connected(second)
        assert collector.wait_for_all(count, 30), f"{len(set(collector.payloads))} of {count} arrived"
        second.stop(signal.SIGTERM)
    finally:
        collector.close()
        upstream.stop()

    payloads = collector.payloads
    assert set(payloads) == set(range(count))  # 0 lost
    first_seen = list(dict.fromkeys(payloads))
    assert first_seen == list(range(count))  # in order

    # Everything was acknowledged upstream and deleted: a third start has nothing to send.
    third = broker_factory(config)
    assert "from the disk queue" not in third.logs()


def test_the_disk_bound_drops_the_oldest_and_counts_them(tmp_path, mosquitto_factory, broker_factory):
    upstream, collector = upstream_down_with_a_collector(tmp_path, mosquitto_factory)
    config = disk_bridge(upstream.port, tmp_path / "store", disk_cache_size=5)
    try:
        first = broker_factory(config)
        first.wait_for_log(r"bridge up: 127\.0\.0\.1:\d+: .*retrying")
        publish_stream(first.port, 12, 1000, "d/seq")
        metrics = bridge_metrics(first)
        assert metrics['appliance_bridge_messages_dropped_total{reason="queue_full"}'] == 7
        assert metrics["appliance_bridge_queue_depth"] == 5
        first.kill()

        upstream.start()
        collector.connect()
        second = broker_factory(config)
        connected(second)
        assert collector.wait_for_all(5, 30), collector.payloads
    finally:
        collector.close()
        upstream.stop()
    assert list(dict.fromkeys(collector.payloads)) == [7, 8, 9, 10, 11]  # the newest five, in order


def test_a_directory_the_store_cannot_use_is_one_line_naming_the_key(tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    conf = tmp_path / "nanomq.conf"
    conf.write_text(BASE_CONFIG + disk_bridge(1, not_a_directory))
    result = subprocess.run([sys.executable, "-m", "appliance", "--conf", str(conf)], cwd=ROOT,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "sqlite.mounted_file_path" in line]
    assert f"{conf}:" in line and "is not a directory" in line


def test_the_publisher_gets_its_puback_only_once_the_message_is_on_disk(tmp_path, broker_factory):
    # Another process holding the store's write lock stalls its commits (a real fault, not
    # a mock): the PUBACK must wait for the row, and come once the lock is released.
    store_dir = tmp_path / "store"
    appliance = broker_factory(disk_bridge(free_port(), store_dir))
    acked = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
    client.on_publish = lambda *args: acked.set()
    client.connect("127.0.0.1", appliance.port)
    client.loop_start()
    try:
        client.publish("other/topic", "warm-up", qos=1)  # not forwarded: nothing to write
        assert acked.wait(TIMEOUT)
        acked.clear()
        locker = sqlite3.connect(store_dir / "persistence.db", isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        client.publish("d/1", "durable", qos=1)
        assert not acked.wait(2.0), "PUBACK before the message was on disk"  # absence: nothing to await
        locker.execute("ROLLBACK")
        locker.close()
        assert acked.wait(TIMEOUT)
    finally:
        client.loop_stop()
        client.disconnect()
    assert bridge_metrics(appliance)["appliance_bridge_queue_depth"] == 1
