"""Delivery of one event: POST it, retry what retrying can fix with capped exponential backoff
and jitter, and keep track of whether the endpoint answers (logged when that changes)."""

from __future__ import annotations

import logging
import random

import gevent

from appliance.config.model import WebhookRetry

from .events import QueuedEvent
from .metrics import WebhookMetrics

log = logging.getLogger("appliance.webhook")

# How a delivery ended.
DELIVERED = "delivered"
RETRIES_EXHAUSTED = "retries_exhausted"  # retryable failures, max_attempts reached (no spool)
REJECTED = "rejected"  # a 4xx that retrying cannot fix


class Delivery:
    """`deliver(channel, item)` until the endpoint answers 2xx, rejects the event, or (only
    when `retry_forever` is off: without a spool) `retry.max_attempts` are used up."""

    def __init__(self, retry: WebhookRetry, retry_forever: bool, metrics: WebhookMetrics, log_url: str,
                 on_recovered=None) -> None:
        self._retry = retry
        self._retry_forever = retry_forever
        self._metrics = metrics
        self._log_url = log_url
        self._on_recovered = on_recovered or (lambda: None)
        self.endpoint_down = False
        self.inflight = 0  # requests under way now

    def deliver(self, channel, item: QueuedEvent) -> tuple[str, str]:
        """Returns (DELIVERED | REJECTED | RETRIES_EXHAUSTED, what went wrong last)."""
        attempts = 0
        metrics = self._metrics
        while True:
            attempts += 1
            self.inflight += 1
            try:
                attempt = channel.post(item.body)
            finally:
                self.inflight -= 1
            metrics.observe(item.event, attempt.seconds)
            if attempt.reason is None:
                metrics.requests[item.event, "delivered", ""] += 1
                if self.endpoint_down:
                    self.endpoint_down = False
                    log.info("webhook: endpoint %s answers again", self._log_url)
                    self._on_recovered()
                return DELIVERED, ""
            if attempt.retryable and (self._retry_forever or attempts < self._retry.max_attempts):
                metrics.requests[item.event, "retried", attempt.reason] += 1
                if not self.endpoint_down:
                    self.endpoint_down = True
                    log.warning("webhook: endpoint %s failing (%s); retrying with backoff", self._log_url,
                                attempt.detail)
                gevent.sleep(self.backoff(attempts, attempt.retry_after))
                continue
            metrics.requests[item.event, "failed", attempt.reason] += 1
            outcome = RETRIES_EXHAUSTED if attempt.retryable else REJECTED
            return outcome, f"{item.event}: {attempt.detail} after {attempts} attempt(s)"

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        retry = self._retry
        ceiling = min(retry.backoff_max, retry.backoff_min * 2 ** (attempts - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter: workers do not retry in step
        if retry_after is not None:
            delay = max(delay, min(retry_after, retry.backoff_max))
        return delay
