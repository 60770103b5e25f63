"""The store's Prometheus metrics: plain numbers kept by the writer, turned into families when
Prometheus scrapes."""

from __future__ import annotations

import os
from bisect import bisect_left

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

# 100 us to 5 s: an os-synced commit takes tens of microseconds, an fsync'd one milliseconds.
COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
ROWS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class Histogram:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, int]]:
        cumulative, out = 0, []
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts):
            cumulative += n
            out.append((bound, cumulative))
        return out


class StoreMetrics(Collector):
    """Commits, their latency and size, failures, changes waiting, and the files' size."""

    def __init__(self, name: str, path: str, pending) -> None:
        self.name = name
        self._path = path
        self._pending = pending  # () -> changes queued and not yet durable
        self.commits = 0
        self.errors = 0
        self.commit_seconds = Histogram(COMMIT_BUCKETS)
        self.rows_per_commit = Histogram(ROWS_BUCKETS)

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(self._path + suffix)
            except OSError:
                pass
        return total

    def collect(self):
        labels = [self.name]
        families = [
            (CounterMetricFamily, "appliance_store_commits", "Transactions committed by the store's writer."),
            (CounterMetricFamily, "appliance_store_commit_errors",
             "Commits that failed (e.g. disk full); their changes are kept and retried."),
            (GaugeMetricFamily, "appliance_store_pending_changes", "Changes queued and not yet durable."),
            (GaugeMetricFamily, "appliance_store_size_bytes", "Size of the store's files (database, WAL, index)."),
        ]
        values = (self.commits, self.errors, self._pending(), self.size_bytes())
        for (kind, name, doc), value in zip(families, values):
            family = kind(name, doc, labels=["store"])
            family.add_metric(labels, value)
            yield family
        seconds = HistogramMetricFamily("appliance_store_commit_seconds",
                                        "Time to write and sync one transaction.", labels=["store"])
        seconds.add_metric(labels, self.commit_seconds.buckets(), self.commit_seconds.total)
        yield seconds
        rows = HistogramMetricFamily("appliance_store_rows_per_commit", "Changes per transaction.",
                                     labels=["store"])
        rows.add_metric(labels, self.rows_per_commit.buckets(), self.rows_per_commit.total)
        yield rows
