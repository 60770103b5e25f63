"""The registry reads the broker's plain integers at scrape time, under conventional names."""

import platform

import gevent
import prometheus_client
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import appliance
from appliance.metrics import create_registry


def scrape(registry) -> dict:
    """{(sample name, frozenset of labels): value} from the registry's text exposition."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_gauges_follow_the_broker_counts_at_each_scrape(broker_double):
    broker = broker_double
    registry = create_registry(broker)
    broker.connections, broker.sessions, broker.subscriptions = 3, 5, 7
    broker.topics, broker.retained, broker.inflight = 2, 11, 13
    samples = scrape(registry)
    assert value(samples, "appliance_connections") == 3
    assert value(samples, "appliance_sessions") == 5
    assert value(samples, "appliance_subscriptions") == 7
    assert value(samples, "appliance_topics") == 2
    assert value(samples, "appliance_retained_messages") == 11
    assert value(samples, "appliance_inflight_messages") == 13

    broker.connections = 1
    assert value(scrape(registry), "appliance_connections") == 1


def test_hot_path_integers_become_counters_with_labels(broker_double):
    broker = broker_double
    registry = create_registry(broker)
    stats = broker.stats
    stats.connections_accepted += 4
    stats.connections_refused["bad_credentials"] += 2
    stats.messages_received[0] += 10
    stats.messages_received[2] += 1
    stats.messages_sent[1] += 6
    stats.messages_dropped["queue_full"] += 3
    stats.bytes_received += 1000
    stats.bytes_sent += 2000
    stats.packets_received += 20
    stats.packets_sent += 30

    samples = scrape(registry)
    assert value(samples, "appliance_connections_accepted_total") == 4
    assert value(samples, "appliance_connections_refused_total", reason="bad_credentials") == 2
    assert value(samples, "appliance_messages_received_total", qos="0") == 10
    assert value(samples, "appliance_messages_received_total", qos="1") == 0
    assert value(samples, "appliance_messages_received_total", qos="2") == 1
    assert value(samples, "appliance_messages_sent_total", qos="1") == 6
    assert value(samples, "appliance_messages_dropped_total", reason="queue_full") == 3
    assert value(samples, "appliance_received_bytes_total") == 1000
    assert value(samples, "appliance_sent_bytes_total") == 2000
    assert value(samples, "appliance_packets_received_total") == 20
    assert value(samples, "appliance_packets_sent_total") == 30

    stats.messages_received[0] += 1
    assert value(scrape(registry), "appliance_messages_received_total", qos="0") == 11


def test_every_drop_reason_is_exported_before_the_first_drop(broker_double):
    samples = scrape(create_registry(broker_double))
    for reason in ("queue_full", "expired", "too_large", "no_subscribers"):
        assert value(samples, "appliance_messages_dropped_total", reason=reason) == 0


def test_a_drop_reason_the_collector_does_not_know_is_still_exported(broker_double):
    broker = broker_double
    broker.stats.messages_dropped["a_new_reason"] += 1
    assert value(scrape(create_registry(broker)), "appliance_messages_dropped_total", reason="a_new_reason") == 1


def test_build_info_names_version_python_and_gevent(broker_double):
    samples = scrape(create_registry(broker_double))
    labels = {"version": appliance.__version__, "python": platform.python_version(), "gevent": gevent.__version__}
    assert value(samples, "appliance_build_info", **labels) == 1


def test_process_metrics_come_from_prometheus_clients_process_collector(broker_double):
    samples = scrape(create_registry(broker_double))
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "process_open_fds") > 0
    assert value(samples, "process_cpu_seconds_total") >= 0
    assert any(name == "python_info" for name, _ in samples)


def test_each_registry_is_its_own_and_the_global_default_stays_untouched(broker_double):
    before = {family.name for family in prometheus_client.REGISTRY.collect()}
    first, second = broker_double, type(broker_double)()
    first.connections, second.connections = 1, 2
    assert value(scrape(create_registry(first)), "appliance_connections") == 1
    assert value(scrape(create_registry(second)), "appliance_connections") == 2
    assert {family.name for family in prometheus_client.REGISTRY.collect()} == before
