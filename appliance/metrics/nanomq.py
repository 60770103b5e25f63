"""NanoMQ's own metrics, as its `/api/v4/prometheus` and `/api/v4/metrics` serve them.

Existing NanoMQ dashboards read `nanomq_*` series whose names break Prometheus
conventions (`_count` gauges, counters without `_total`), so they are written here by
hand rather than through prometheus-client, and only on the `/api/v4` endpoints.
Like NanoMQ, the `_max` series are running maxima of the values seen at each request.
"""

from __future__ import annotations

import os
import time

# (name, type, help); the order is NanoMQ's.
SERIES = (
    ("nanomq_connections_count", "gauge", "MQTT connections open now."),
    ("nanomq_connections_max", "gauge", "Most MQTT connections seen open at once."),
    ("nanomq_sessions_count", "gauge", "MQTT sessions held, connected or not."),
    ("nanomq_sessions_max", "gauge", "Most MQTT sessions seen at once."),
    ("nanomq_topics_count", "gauge", "Distinct topic filters with at least one subscriber."),
    ("nanomq_topics_max", "gauge", "Most distinct subscribed topic filters seen at once."),
    ("nanomq_subscribers_count", "gauge", "Subscriptions held."),
    ("nanomq_subscribers_max", "gauge", "Most subscriptions seen at once."),
    ("nanomq_messages_received", "counter", "PUBLISH packets received from clients."),
    ("nanomq_messages_sent", "counter", "PUBLISH packets sent to clients."),
    ("nanomq_messages_dropped", "counter", "Messages not delivered."),
    ("nanomq_memory_usage", "gauge", "Resident memory of the process (b)"),
    ("nanomq_memory_usage_max", "gauge", "Most resident memory seen (b)"),
    ("nanomq_cpu_usage", "gauge", "CPU used by the process since the previous sample, of all cores (%)"),
    ("nanomq_cpu_usage_max", "gauge", "Highest CPU usage seen (%)"),
)


class NanoMQMetrics:
    """Samples the broker and the process as NanoMQ does and keeps the running maxima."""

    def __init__(self, broker) -> None:
        self._broker = broker
        self._cpu = CpuUsage()
        self._max: dict[str, float] = {}

    def sample(self) -> dict[str, float]:
        """Every series' value keyed by name; the `_max` series include this sample."""
        broker = self._broker
        stats = broker.stats
        current = {
            "nanomq_connections_count": broker.connection_count(),
            "nanomq_sessions_count": broker.session_count(),
            "nanomq_topics_count": broker.topic_count(),
            "nanomq_subscribers_count": broker.subscription_count(),
            "nanomq_memory_usage": resident_memory_bytes(),
            "nanomq_cpu_usage": round(self._cpu.percent(), 2),
        }
        for name, value in current.items():
            maximum = name.removesuffix("_count") + "_max"
            self._max[maximum] = max(self._max.get(maximum, value), value)
        return {
            **current,
            **self._max,
            "nanomq_messages_received": sum(stats.messages_received),
            "nanomq_messages_sent": sum(stats.messages_sent),
            "nanomq_messages_dropped": sum(stats.messages_dropped.values()),
        }

    def prometheus_text(self) -> str:
        """The `nanomq_*` series in Prometheus text format 0.0.4."""
        values = self.sample()
        lines = []
        for name, kind, documentation in SERIES:
            lines += (f"# HELP {name} {documentation}", f"# TYPE {name} {kind}", f"{name} {_number(values[name])}")
        return "\n".join(lines) + "\n"

    def metrics_json(self) -> dict:
        """The body of `/api/v4/metrics`: NanoMQ's keys, plus `stats` with every series.

        NanoMQ's `metrics` lists its bridges; the appliance has none, so it is empty."""
        values = self.sample()
        return {
            "code": 0,
            "metrics": [],
            "cpuinfo": f"{values['nanomq_cpu_usage']:.2f}%",
            "memory": str(values["nanomq_memory_usage"]),
            "stats": {name.removeprefix("nanomq_"): values[name] for name, _, _ in SERIES},
        }


class CpuUsage:
    """Share of all cores the process used, in percent (NanoMQ's cpu_usage), over windows of
    at least `MIN_WINDOW` seconds: CPU time ticks in 10 ms steps, so shorter ones are noise."""

    MIN_WINDOW = 1.0

    def __init__(self) -> None:
        self._last = self._now()
        self._percent = 0.0

    def percent(self) -> float:
        cpu, wall = self._now()
        last_cpu, last_wall = self._last
        if wall - last_wall >= self.MIN_WINDOW:
            cores = os.cpu_count() or 1
            self._percent = min(100.0, 100.0 * (cpu - last_cpu) / ((wall - last_wall) * cores))
            self._last = (cpu, wall)
        return self._percent

    @staticmethod
    def _now() -> tuple[float, float]:
        times = os.times()
        return times.user + times.system, time.monotonic()


def resident_memory_bytes() -> int:
    """Resident set size of this process (Linux; 0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _number(value: float) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)
