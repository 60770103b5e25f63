"""At least once through an upstream outage: a 1,000 msg/s QoS 1 stream keeps flowing into
the appliance while mosquitto is down for 5 s; afterwards every message is upstream, in
order, with a bounded number of duplicates. Also: the queue bound drops oldest-first and
counts it, and /readyz does not care about the upstream."""

from __future__ import annotations

import signal
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.bridge.metrics import bridge_metrics, http_get
from tests.bridge.test_bridge_mosquitto import bridge_block, connected
from tests.conftest import TIMEOUT

RATE = 1000  # messages per second
WINDOW = 1024  # the bridge's inflight window (appliance.bridge.session.DEFAULT_WINDOW)


class Collector:
    """A persistent-session QoS 1 subscriber on the upstream that survives its restarts."""

    def __init__(self, port: int, topic: str) -> None:
        self.port, self.topic = port, topic
        self.payloads: list[int] = []
        self._changed = threading.Condition()
        self.client = None

    def connect(self) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="collector", clean_session=False,
                             reconnect_on_failure=False)
        subscribed = threading.Event()
        client.on_message = self._on_message
        client.on_subscribe = lambda *args: subscribed.set()
        client.connect("127.0.0.1", self.port, keepalive=60)
        client.loop_start()
        client.subscribe(self.topic, qos=1)
        assert subscribed.wait(TIMEOUT)
        self.client = client

    def close(self) -> None:
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()

    def _on_message(self, client, userdata, message) -> None:
        with self._changed:
            self.payloads.append(int(message.payload))
            self._changed.notify_all()

    def wait_for_all(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(set(self.payloads)) >= count, timeout)


def publish_stream(port: int, count: int, rate: int, topic: str) -> None:
    """QoS 1 at `rate` msg/s from a local client; returns once every PUBACK is in."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="stream")
    acked = threading.Semaphore(0)
    client.on_publish = lambda *args: acked.release()
    client.max_inflight_messages_set(0)  # no limit: the stream's pace is the rate, not the acks
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.monotonic()
    for seq in range(count):
        client.publish(topic, str(seq), qos=1)
        delay = start + (seq + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the stream, not waiting for an event
    for _ in range(count):
        assert acked.acquire(timeout=TIMEOUT)
    client.loop_stop()
    client.disconnect()


def test_upstream_down_for_5s_during_a_qos1_stream_loses_nothing_and_keeps_order(tmp_path, mosquitto_factory,
                                                                                 broker_factory):
    upstream = mosquitto_factory(extra=f"persistence true\npersistence_location {tmp_path}/\nautosave_interval 0\n")
    try:
        collector = Collector(upstream.port, "stream/#")
        collector.connect()
        appliance = broker_factory(bridge_block("up", upstream.port, 4, """
 forwards = [ { local_topic = "stream/#", qos = 1 } ]
 max_send_queue_len = 100000
"""))
        connected(appliance)
        count = 9 * RATE
        publisher = threading.Thread(target=publish_stream, args=(appliance.port, count, RATE, "stream/seq"))
        publisher.start()
        time.sleep(2.0)  # the stream is flowing through the bridge
        # Down for 5 s. SIGTERM lets mosquitto save what it acknowledged for the collector's
        # persistent session, so every message lost is the bridge's fault alone.
        upstream.proc.send_signal(signal.SIGTERM)
        upstream.proc.wait(TIMEOUT)
        collector.close()
        time.sleep(5.0)
        upstream.start()
        collector.connect()
        publisher.join(TIMEOUT * 3)
        assert not publisher.is_alive()
        assert collector.wait_for_all(count, 30), f"{len(set(collector.payloads))} of {count} arrived"
        metrics = bridge_metrics(appliance)
    finally:
        collector.close()
        upstream.stop()

    payloads = collector.payloads
    assert set(payloads) == set(range(count))  # 0 lost
    first_seen = list(dict.fromkeys(payloads))
    assert first_seen == sorted(first_seen)  # order kept
    duplicates = len(payloads) - count
    assert duplicates <= WINDOW, f"{duplicates} duplicates"  # at most one inflight window replayed
    print(f"outage: {count} messages, {duplicates} duplicates")
    assert metrics["appliance_bridge_reconnects_total"] >= 1
    assert metrics["appliance_bridge_messages_forwarded_total"] >= count
    assert metrics['appliance_bridge_messages_dropped_total{reason="queue_full"}'] == 0
    assert metrics["appliance_bridge_up"] == 1


def test_queue_overflow_drops_oldest_first_and_counts_it(tmp_path, mosquitto_factory, broker_factory, mqtt):
    upstream = mosquitto_factory(extra=f"persistence true\npersistence_location {tmp_path}/\nautosave_interval 0\n")
    collector = Collector(upstream.port, "q/#")
    collector.connect()
    appliance = broker_factory(bridge_block("up", upstream.port, 4, """
 forwards = [ { local_topic = "q/#", qos = 1 } ]
 max_send_queue_len = 10
"""))
    connected(appliance)
    upstream.proc.send_signal(signal.SIGTERM)  # saves the collector's session
    upstream.proc.wait(TIMEOUT)
    collector.close()
    appliance.wait_for_log(r"bridge up: 127\.0\.0\.1:\d+: .*retrying")
    assert http_get(appliance, "/readyz").status == 200  # readiness does not depend on the upstream
    local = mqtt(appliance.port, "local")
    local.connect()
    for seq in range(25):
        local.publish("q/x", str(seq), qos=1)
    metrics = bridge_metrics(appliance)
    assert metrics['appliance_bridge_messages_dropped_total{reason="queue_full"}'] == 15
    assert metrics["appliance_bridge_queue_depth"] == 10
    assert metrics["appliance_bridge_up"] == 0
    appliance.wait_for_log("send queue full")

    upstream.start()
    collector.connect()
    assert collector.wait_for_all(10, TIMEOUT)
    assert collector.payloads == list(range(15, 25))  # the newest ten, in order
    assert eventually(lambda: bridge_metrics(appliance)["appliance_bridge_queue_depth"] == 0)  # all acknowledged


def eventually(condition, timeout: float = TIMEOUT) -> bool:
    """Poll a scrape-time number (a metric has no event to await) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sigterm_sends_what_is_queued_before_exiting(mosquitto_factory, broker_factory, mqtt):
    upstream = mosquitto_factory()
    cloud = mqtt(upstream.port, "cloud")
    cloud.connect()
    cloud.subscribe("last/#", qos=1)
    appliance = broker_factory(bridge_block("up", upstream.port, 4, ' forwards = [ { local_topic = "last/#", qos = 1 } ]'))
    connected(appliance)
    local = mqtt(appliance.port, "local")
    local.connect()
    for seq in range(200):
        local.publish("last/words", str(seq), qos=1)  # each acknowledged: queued for the bridge
    assert appliance.stop() == 0
    assert [cloud.expect_message().payload for _ in range(200)] == [str(seq).encode() for seq in range(200)]
    assert "still queued" not in appliance.logs()
