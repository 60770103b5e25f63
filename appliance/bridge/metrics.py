"""Per-bridge numbers (plain integers bumped on the hot path) and their Prometheus export.

Names are the ones reserved in CONTRACTS.md. Every labelled series exists at 0 from the
start, so `increase()` in an alert sees the first burst.
"""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# Why a message did not cross the bridge.
DROP_REASONS = (
    "queue_full",  # max_send_queue_len reached: the oldest waiting message was dropped
    "refused",  # the upstream answered PUBACK/PUBREC with an error reason code (v5)
    "too_large",  # larger than the upstream's Maximum Packet Size (v5)
    "bad_topic",  # remapping produced no valid topic
    "loop",  # an echo of what this bridge forwarded, suppressed (v3/v4 upstreams)
    "shutdown",  # still queued in memory when the appliance stopped
)


class BridgeStats:
    """Counters of one bridge; the link and the bridge bump them, the collector reads them."""

    __slots__ = ("up", "forwarded", "received", "dropped", "reconnects")

    def __init__(self) -> None:
        self.up = 0
        self.forwarded = 0  # acknowledged by the upstream (QoS 1/2) or written (QoS 0)
        self.received = 0  # PUBLISH from the upstream routed locally
        self.dropped: Counter = Counter()
        self.reconnects = 0


class BridgeCollector(Collector):
    """Reads every bridge's stats and queue depth at scrape time."""

    def __init__(self, bridges) -> None:
        self._bridges = bridges  # objects with .name, .stats and .queue_depth()

    def collect(self):
        up = GaugeMetricFamily("appliance_bridge_up", "1 while the bridge is connected to its upstream.",
                               labels=["bridge"])
        forwarded = CounterMetricFamily(
            "appliance_bridge_messages_forwarded", "Messages forwarded to the upstream (QoS 1/2: acknowledged).",
            labels=["bridge"])
        received = CounterMetricFamily("appliance_bridge_messages_received",
                                       "Messages received from the upstream and routed locally.", labels=["bridge"])
        dropped = CounterMetricFamily("appliance_bridge_messages_dropped",
                                      "Messages that did not cross the bridge, by reason.",
                                      labels=["bridge", "reason"])
        depth = GaugeMetricFamily("appliance_bridge_queue_depth",
                                  "Messages waiting for the upstream, unacknowledged ones included.",
                                  labels=["bridge"])
        reconnects = CounterMetricFamily("appliance_bridge_reconnects",
                                         "Connection attempts after the first one.", labels=["bridge"])
        for bridge in self._bridges:
            name, stats = bridge.name, bridge.stats
            up.add_metric([name], stats.up)
            forwarded.add_metric([name], stats.forwarded)
            received.add_metric([name], stats.received)
            for reason in DROP_REASONS:
                dropped.add_metric([name, reason], stats.dropped[reason])
            depth.add_metric([name], bridge.queue_depth())
            reconnects.add_metric([name], stats.reconnects)
        yield from (up, forwarded, received, dropped, depth, reconnects)


def ack_rtt_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("appliance_bridge_ack_rtt_seconds",
                     "Time from writing a QoS 1/2 PUBLISH upstream to its PUBACK/PUBCOMP.", ["bridge"],
                     buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                     registry=registry)
