"""Who may open a connection at all, decided at accept before a byte is read:
`limits.max_connections` over every listener and `limits.max_connection_rate` per source IP;
and how many admitted sockets may be in a TLS handshake at once (`limits.max_handshakes`),
so that clients which never finish one cannot hold every place."""

from __future__ import annotations

import time

from ..config.model import LimitsConfig

_FORGET_AFTER = 10_000  # tracked source addresses before idle ones are forgotten


class Admission:
    """Counts open sockets and keeps a token bucket per source IP (burst = rate per second)."""

    def __init__(self, limits: LimitsConfig, stats) -> None:
        self.stats = stats
        self.reconfigure(limits)
        self.open = 0
        self.handshaking = 0
        self._buckets: dict[str, list[float]] = {}  # ip -> [tokens, last refill]

    def reconfigure(self, limits: LimitsConfig) -> None:
        """New limits (a reload): sockets already open stay, even over a lower max_connections."""
        self.max_connections = limits.max_connections
        self.rate = limits.max_connection_rate
        self.max_handshakes = limits.max_handshakes or max(1, limits.max_connections // 2)

    def admit(self, ip: str) -> bool:
        """Whether a new connection from `ip` may be served; if so the caller must `release()` it."""
        if self.open >= self.max_connections:
            self.stats.limits_hit["max_connections"] += 1
            return False
        if self.rate and not self._take_token(ip):
            self.stats.limits_hit["max_connection_rate"] += 1
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1

    def start_handshake(self) -> bool:
        """Whether an admitted socket may begin its TLS handshake; if so the caller must
        `end_handshake()` whatever its outcome."""
        if self.handshaking >= self.max_handshakes:
            self.stats.limits_hit["max_handshakes"] += 1
            return False
        self.handshaking += 1
        return True

    def end_handshake(self) -> None:
        self.handshaking -= 1

    def _take_token(self, ip: str) -> bool:
        now = time.monotonic()
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= _FORGET_AFTER:
                self._forget_idle(now)
            bucket = self._buckets[ip] = [float(self.rate), now]
        tokens = min(self.rate, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1
        return True

    def _forget_idle(self, now: float) -> None:
        # A bucket idle for a second is full again: forgetting it changes nothing.
        self._buckets = {ip: b for ip, b in self._buckets.items() if now - b[1] < 1.0}
