"""A real Prometheus server (Debian package `prometheus`) scrapes the real broker's /metrics
and, with basic auth, its /api/v4/prometheus; its query API returns the broker's series."""

import json
import time
import urllib.parse

import pytest

POLL_LIMIT = 30.0  # seconds; Prometheus picks up new targets on a ~5 s tick


def wait_for_value(fetch, prometheus_url: str, query: str, expected: float) -> None:
    """Poll Prometheus' query API until `query` returns `expected`, for at most POLL_LIMIT."""
    url = f"{prometheus_url}/api/v1/query?query={urllib.parse.quote(query)}"
    deadline = time.monotonic() + POLL_LIMIT
    last = None
    while time.monotonic() < deadline:
        response = fetch(url)
        last = response.text
        result = json.loads(response.body)["data"]["result"] if response.status == 200 else []
        if result and float(result[0]["value"][1]) == expected:
            return
        time.sleep(0.2)
    pytest.fail(f"Prometheus never returned {expected} for {query}; last answer: {last}")


@pytest.fixture
def prometheus_url(start_prometheus, broker) -> str:
    return start_prometheus(broker.http_port, password="test-secret")  # the lead's base config


def test_prometheus_sees_the_broker_series_move_with_mqtt_traffic(broker, mqtt, prometheus_url, fetch):
    first = mqtt(broker.port, "first")
    first.connect()
    first.publish("readings/1", b"21.5", qos=1)
    wait_for_value(fetch, prometheus_url, 'appliance_connections{job="appliance"}', 1)
    wait_for_value(fetch, prometheus_url, 'appliance_messages_received_total{job="appliance",qos="1"}', 1)

    second = mqtt(broker.port, "second")
    second.connect()
    wait_for_value(fetch, prometheus_url, 'appliance_connections{job="appliance"}', 2)


def test_prometheus_reads_nanomq_series_from_the_authenticated_api(broker, mqtt, prometheus_url, fetch):
    mqtt(broker.port, "one").connect()
    wait_for_value(fetch, prometheus_url, 'up{job="nanomq"}', 1)
    wait_for_value(fetch, prometheus_url, 'nanomq_connections_count{job="nanomq"}', 1)
    wait_for_value(fetch, prometheus_url, 'appliance_connections{job="nanomq"}', 1)
