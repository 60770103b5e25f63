"""The broker's numbers as Prometheus metrics, read from plain integers at scrape time.

The hot path only bumps attributes of `BrokerStats`; this collector turns them into
metric families when Prometheus asks, so counting a message costs an integer add.
"""

from __future__ import annotations

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..broker.stats import DROP_REASONS


class BrokerCollector(Collector):
    """Exports `appliance_*` broker metrics from the broker's read API at scrape time."""

    def __init__(self, broker) -> None:
        self._broker = broker

    def collect(self):
        broker = self._broker
        stats = broker.stats

        yield _gauge("appliance_connections", "MQTT connections open now (CONNACK success sent).",
                     broker.connection_count())
        yield _counter("appliance_connections_accepted_total", "MQTT connections accepted (CONNACK success).",
                       stats.connections_accepted)
        yield _labelled_counter("appliance_connections_refused_total",
                        "MQTT connections refused at CONNECT, by reason.", "reason",
                        sorted(stats.connections_refused.items()))
        yield _gauge("appliance_sessions", "MQTT sessions held, connected or not.", broker.session_count())
        yield _labelled_counter("appliance_sessions_refused_total",
                        "CONNECTs given no session: its client id's session belongs to another user "
                        "(other_owner), or limits.max_sessions is reached.", "reason",
                        sorted(stats.sessions_refused.items()))
        yield _counter("appliance_sessions_expired_total", "Offline sessions ended by their expiry interval.",
                       stats.sessions_expired)
        yield _gauge("appliance_subscriptions", "Subscriptions held, shared subscription members included.",
                     broker.subscription_count())
        yield _gauge("appliance_topics", "Distinct topic filters with at least one subscriber.",
                     broker.topic_count())
        yield _gauge("appliance_retained_messages", "Retained messages stored.", broker.retained_count())
        yield _gauge("appliance_inflight_messages", "QoS 1 and 2 messages sent to clients and not yet acknowledged.",
                     broker.inflight_count())
        yield _labelled_counter("appliance_messages_received_total",
                        "PUBLISH packets received from clients, by QoS.", "qos",
                        [(str(qos), n) for qos, n in enumerate(stats.messages_received)])
        yield _labelled_counter("appliance_messages_sent_total",
                        "PUBLISH packets sent to clients, by QoS.", "qos",
                        [(str(qos), n) for qos, n in enumerate(stats.messages_sent)])
        dropped = dict.fromkeys(DROP_REASONS, 0)
        dropped.update(stats.messages_dropped)
        yield _labelled_counter("appliance_messages_dropped_total",
                        "Messages not delivered, by reason.", "reason", sorted(dropped.items()))
        yield _counter("appliance_received_bytes_total", "Bytes read from MQTT connections.", stats.bytes_received)
        yield _counter("appliance_sent_bytes_total", "Bytes written to MQTT connections.", stats.bytes_sent)
        yield _counter("appliance_packets_received_total", "MQTT control packets received.", stats.packets_received)
        yield _counter("appliance_packets_sent_total", "MQTT control packets sent.", stats.packets_sent)
        yield _counter("appliance_packets_dropped_closing_total",
                       "MQTT packets a client sent after its connection began closing (after DISCONNECT, "
                       "a protocol error, a takeover or shutdown): dropped, never routed.",
                       stats.packets_dropped_closing)
        yield _labelled_counter("appliance_acl_denied_total",
                        "PUBLISH, SUBSCRIBE, will messages and deliveries (receive) refused by the ACL, by action.", "action",
                        sorted(stats.acl_denied.items()))
        yield _labelled_counter("appliance_limits_hit_total",
                        "Connections, packets or messages refused by a configured limit, by limit.", "limit",
                        sorted(stats.limits_hit.items()))
        yield _counter("appliance_packets_dropped_too_large_total",
                       "Packets of ours (CONNACK, SUBACK, acks...) not sent: over the client's Maximum Packet "
                       "Size even without optional properties.", stats.packets_dropped_too_large)
        yield _counter("appliance_tls_handshake_failures_total", "TLS handshakes that failed on ssl listeners.",
                       stats.tls_handshake_failures)
        yield _counter("appliance_http_auth_errors_total",
                       "http_auth requests that failed (unreachable, slow or 5xx).", stats.http_auth_errors)


def _gauge(name: str, documentation: str, value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _labelled_counter(name: str, documentation: str, label: str, values) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for label_value, value in values:
        family.add_metric([label_value], value)
    return family
