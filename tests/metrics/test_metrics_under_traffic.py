"""Scrapes of the real broker (`python -m appliance`) while real MQTT clients and a real
webhook endpoint work it: every counter moves exactly as the traffic says it must."""

import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

SETTLE = 10.0  # seconds a counter may take to catch up with traffic it follows


class Scraper:
    def __init__(self, fetch, port: int) -> None:
        self._fetch = fetch
        self.url = f"http://127.0.0.1:{port}"

    def samples(self) -> dict:
        response = self._fetch(self.url + "/metrics")
        assert response.status == 200
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def value(self, name: str, **labels) -> float:
        return self.samples().get((name, frozenset(labels.items())), 0.0)

    def wait_for(self, name: str, expected: float, **labels) -> None:
        """Scrape until the sample equals `expected`: for counters bumped after the event the
        test can see (a webhook response is counted after the receiver has answered)."""
        deadline = time.monotonic() + SETTLE
        while (current := self.value(name, **labels)) != expected:
            if time.monotonic() > deadline:
                pytest.fail(f"{name}{labels} stayed {current}, expected {expected}")
            time.sleep(0.05)


@pytest.fixture
def scraper(broker, fetch) -> Scraper:
    return Scraper(fetch, broker.http_port)


def test_connections_sessions_and_subscriptions_follow_the_clients(broker, mqtt, scraper):
    assert scraper.value("appliance_connections") == 0
    subscriber = mqtt(broker.port, "subscriber")
    subscriber.connect()
    subscriber.subscribe("sensors/#", qos=1)
    subscriber.subscribe("alarms/+", qos=0)
    publisher = mqtt(broker.port, "publisher")
    publisher.connect()

    assert scraper.value("appliance_connections") == 2
    assert scraper.value("appliance_connections_accepted_total") == 2
    assert scraper.value("appliance_sessions") == 2
    assert scraper.value("appliance_subscriptions") == 2
    assert scraper.value("appliance_topics") == 2

    publisher.disconnect()
    scraper.wait_for("appliance_connections", 1)
    assert scraper.value("appliance_sessions") == 1  # a clean session ends with its connection


def test_messages_are_counted_by_qos_and_bytes_both_ways(broker, mqtt, scraper):
    subscriber = mqtt(broker.port, "subscriber")
    subscriber.connect()
    subscriber.subscribe("t/#", qos=2)
    publisher = mqtt(broker.port, "publisher")
    publisher.connect()
    bytes_in, bytes_out = scraper.value("appliance_received_bytes_total"), scraper.value("appliance_sent_bytes_total")

    publisher.publish("t/zero", b"0" * 100, qos=0)
    publisher.publish("t/one", b"1" * 100, qos=1)
    publisher.publish("t/one", b"1" * 100, qos=1)
    publisher.publish("t/two", b"2" * 100, qos=2)
    for _ in range(4):
        subscriber.expect_message()

    assert scraper.value("appliance_messages_received_total", qos="0") == 1
    assert scraper.value("appliance_messages_received_total", qos="1") == 2
    assert scraper.value("appliance_messages_received_total", qos="2") == 1
    assert scraper.value("appliance_messages_sent_total", qos="0") == 1
    assert scraper.value("appliance_messages_sent_total", qos="1") == 2
    assert scraper.value("appliance_messages_sent_total", qos="2") == 1
    assert scraper.value("appliance_received_bytes_total") - bytes_in > 400
    assert scraper.value("appliance_sent_bytes_total") - bytes_out > 400


def test_retained_messages_and_messages_nobody_wanted(broker, mqtt, scraper):
    publisher = mqtt(broker.port, "publisher")
    publisher.connect()
    publisher.publish("status/a", b"up", qos=1, retain=True)
    publisher.publish("status/b", b"up", qos=1, retain=True)
    publisher.publish("status/a", b"", qos=1, retain=True)  # an empty retained message clears it

    assert scraper.value("appliance_retained_messages") == 1
    assert scraper.value("appliance_messages_dropped_total", reason="no_subscribers") == 3


def test_refused_connections_are_counted_by_reason(broker, scraper):
    # MQTT 3.1.1 CONNECT, clean session 0, empty client id: identifier rejected (return code 2).
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
        sock.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x00, 0, 60, 0, 0]))
        assert sock.recv(4) == bytes([0x20, 2, 0, 2])

    assert scraper.value("appliance_connections_refused_total", reason="client_id_invalid") == 1
    assert scraper.value("appliance_connections_accepted_total") == 0


WEBHOOK = """
webhook {{
  url = "{url}"
  body.encoding = plain
  pool_size = 4
  cancel_timeout = 2000
  retry {{ max_attempts = 2, backoff_min = 10ms, backoff_max = 10ms }}
  events = [ {{ event = "on_message_publish", topic = "hooked/#" }} ]
}}
"""


def publish_hooked(broker, mqtt, count: int) -> None:
    publisher = mqtt(broker.port, "publisher")
    publisher.connect()
    for n in range(count):
        publisher.publish(f"hooked/{n}", b"reading", qos=1)
    publisher.publish("not-hooked", b"ignored", qos=1)


def test_webhook_latency_histogram_counts_equal_deliveries(broker_factory, mqtt, hook_receiver, fetch):
    broker = broker_factory(WEBHOOK.format(url=hook_receiver.url))
    scraper = Scraper(fetch, broker.http_port)
    publish_hooked(broker, mqtt, 25)

    assert hook_receiver.wait_for(25)
    scraper.wait_for("appliance_webhook_requests_total", 25,
                     event="message_publish", outcome="delivered", reason="")
    assert scraper.value("appliance_webhook_request_duration_seconds_count", event="message_publish") == 25
    assert scraper.value("appliance_webhook_request_duration_seconds_bucket", event="message_publish",
                         le="+Inf") == 25
    assert scraper.value("appliance_webhook_request_duration_seconds_sum", event="message_publish") > 0
    assert scraper.value("appliance_webhook_events_total", event="message_publish") == 25
    assert hook_receiver.received == 25  # the unhooked topic was not posted


def test_webhook_rejected_by_the_endpoint_counts_failures_with_reason(broker_factory, mqtt, hook_receiver, fetch):
    hook_receiver.status = 400  # a 4xx retrying cannot fix: failed at once, never retried
    broker = broker_factory(WEBHOOK.format(url=hook_receiver.url))
    scraper = Scraper(fetch, broker.http_port)
    publish_hooked(broker, mqtt, 5)

    scraper.wait_for("appliance_webhook_events_dropped_total", 5, reason="rejected")
    assert scraper.value("appliance_webhook_requests_total", event="message_publish",
                         outcome="failed", reason="http_4xx") == 5
    assert scraper.value("appliance_webhook_requests_total", event="message_publish",
                         outcome="delivered", reason="") == 0
    assert scraper.value("appliance_webhook_request_duration_seconds_count", event="message_publish") == 5
    assert hook_receiver.received == 5


def test_webhook_endpoint_down_counts_retries_then_failures_as_refused(broker_factory, mqtt, hook_receiver, fetch):
    url = hook_receiver.url
    hook_receiver.stop()  # nothing listens there any more: connection refused
    broker = broker_factory(WEBHOOK.format(url=url))
    scraper = Scraper(fetch, broker.http_port)
    publish_hooked(broker, mqtt, 3)

    scraper.wait_for("appliance_webhook_events_dropped_total", 3, reason="retries_exhausted")
    assert scraper.value("appliance_webhook_requests_total", event="message_publish",
                         outcome="retried", reason="refused") == 3
    assert scraper.value("appliance_webhook_requests_total", event="message_publish",
                         outcome="failed", reason="refused") == 3
    assert scraper.value("appliance_webhook_request_duration_seconds_count", event="message_publish") == 6


def test_limit_refusals_are_counted_by_limit(broker_factory, mqtt, fetch):
    broker = broker_factory("limits { max_subscriptions = 1 }\n")
    scraper = Scraper(fetch, broker.http_port)
    client = mqtt(broker.port, "greedy")
    client.connect()
    assert client.subscribe("one", qos=1) == [1]
    assert client.subscribe("two", qos=1) == [0x80]  # v3.1.1 has no 0x97
    assert scraper.value("appliance_limits_hit_total", limit="max_subscriptions") == 1
    assert scraper.value("appliance_acl_denied_total", action="subscribe") == 0
