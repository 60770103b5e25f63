"""The stage's Prometheus metrics: plain integers bumped on the hot path, turned into metric
families only when Prometheus scrapes (no lock or label lookup per event)."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

# 1 ms to 10 s, about three buckets per decade.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HELP = {
    "events": "Events matched by a webhook rule and accepted for delivery, by event.",
    "requests": "Webhook POST attempts by event and outcome (delivered, retried, failed); "
                "reason says why an attempt was retried or failed.",
    "dropped": "Events that will never be delivered, by reason.",
    "duration": "Time from sending a webhook POST to reading its whole answer (or giving up), by event.",
    "queue": "Events waiting in memory for delivery (in-flight ones included).",
    "spool": "Events in the disk spool or waiting to be written to it.",
    "inflight": "Webhook POSTs under way now.",
    "pool": "Configured number of concurrent webhook requests and connections (pool_size).",
    "utf8": "Invalid UTF-8 sequences replaced by U+FFFD in plain-encoded payloads.",
    "redelivered": "Events POSTed again after a restart that may have reached the endpoint before it "
                   "(their request was under way at a crash or at the end of the drain time).",
    "key_backlog": "Longest backlog of one ordering key (webhook.order), the in-flight event included.",
}


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0


class WebhookMetrics(Collector):
    """Counters the stage bumps, and the gauges it reports through `gauges()`."""

    def __init__(self, gauges, drop_reasons: tuple[str, ...] = ()) -> None:
        self._gauges = gauges  # () -> (queue depth, spool depth, in-flight, pool size, longest key backlog)
        self.events: Counter[str] = Counter()
        self.requests: Counter[tuple[str, str, str]] = Counter()  # (event, outcome, reason)
        # Every reason exists at 0 from the start, so increase() sees the first burst.
        self.dropped: Counter[str] = Counter(dict.fromkeys(drop_reasons, 0))
        self.utf8_replacements = 0
        self.redelivered = 0
        self._latency: dict[str, _Histogram] = {}

    def observe(self, event: str, seconds: float) -> None:
        hist = self._latency.get(event)
        if hist is None:
            hist = self._latency[event] = _Histogram()
        hist.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        hist.total += seconds

    def collect(self):
        events = CounterMetricFamily("appliance_webhook_events", HELP["events"], labels=["event"])
        for event, n in sorted(self.events.items()):
            events.add_metric([event], n)
        yield events

        requests = CounterMetricFamily("appliance_webhook_requests", HELP["requests"],
                                       labels=["event", "outcome", "reason"])
        for labels, n in sorted(self.requests.items()):
            requests.add_metric(list(labels), n)
        yield requests

        dropped = CounterMetricFamily("appliance_webhook_events_dropped", HELP["dropped"], labels=["reason"])
        for reason, n in sorted(self.dropped.items()):
            dropped.add_metric([reason], n)
        yield dropped

        duration = HistogramMetricFamily("appliance_webhook_request_duration_seconds", HELP["duration"],
                                         labels=["event"])
        for event, hist in sorted(self._latency.items()):
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), hist.counts):
                cumulative += n
                buckets.append((bound, cumulative))
            duration.add_metric([event], buckets, hist.total)
        yield duration

        queue, spool, inflight, pool, key_backlog = self._gauges()
        yield GaugeMetricFamily("appliance_webhook_queue_depth", HELP["queue"], value=queue)
        yield GaugeMetricFamily("appliance_webhook_spool_depth", HELP["spool"], value=spool)
        yield GaugeMetricFamily("appliance_webhook_inflight_requests", HELP["inflight"], value=inflight)
        yield GaugeMetricFamily("appliance_webhook_pool_size", HELP["pool"], value=pool)
        yield GaugeMetricFamily("appliance_webhook_key_backlog_max", HELP["key_backlog"], value=key_backlog)
        yield CounterMetricFamily("appliance_webhook_payload_utf8_replacements", HELP["utf8"],
                                  value=self.utf8_replacements)
        yield CounterMetricFamily("appliance_webhook_events_redelivered", HELP["redelivered"],
                                  value=self.redelivered)
