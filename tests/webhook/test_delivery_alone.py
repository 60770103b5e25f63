"""Delivery alone (in process, against the real recording HTTP receiver): what is retried,
what is given up, and the endpoint's health."""

from __future__ import annotations

from appliance.config.model import WebhookConfig, WebhookRetry
from appliance.webhook.delivery import DELIVERED, REJECTED, RETRIES_EXHAUSTED, Delivery
from appliance.webhook.events import QueuedEvent
from appliance.webhook.metrics import WebhookMetrics
from appliance.webhook.sender import Sender

FAST = WebhookRetry(max_attempts=3, backoff_min=0.001, backoff_max=0.005)


def setup(receiver, retry_forever=False):
    sender = Sender(WebhookConfig(url=receiver.url, pool_size=1, cancel_timeout=2.0))
    metrics = WebhookMetrics(lambda: (0, 0, 0, 1, 0))
    recovered = []
    delivery = Delivery(FAST, retry_forever, metrics, receiver.url, lambda: recovered.append(True))
    return sender.channel(), delivery, metrics, recovered


ITEM = QueuedEvent(1, "c", "c", "t", "message_publish", b'{"x":1}')


def test_5xx_is_retried_until_2xx_and_recovery_is_reported(receiver):
    receiver.plan = [(503, 0, False), (500, 0, False)]
    channel, delivery, metrics, recovered = setup(receiver)
    assert delivery.deliver(channel, ITEM) == (DELIVERED, "")
    assert len(receiver.requests) == 3 and not delivery.endpoint_down and recovered == [True]
    assert metrics.requests["message_publish", "retried", "http_5xx"] == 2


def test_a_4xx_is_rejected_at_once(receiver):
    receiver.status = 400
    channel, delivery, metrics, _ = setup(receiver)
    outcome, detail = delivery.deliver(channel, ITEM)
    assert outcome == REJECTED and "HTTP 400" in detail and len(receiver.requests) == 1


def test_retries_end_at_max_attempts_without_a_spool_and_never_with_one(receiver):
    receiver.status = 503
    channel, delivery, _, _ = setup(receiver)
    assert delivery.deliver(channel, ITEM)[0] == RETRIES_EXHAUSTED and len(receiver.requests) == 3
    assert delivery.endpoint_down
    receiver.plan = [(503, 0, False)] * 5
    receiver.status = 200
    channel, forever, _, _ = setup(receiver, retry_forever=True)
    assert forever.deliver(channel, ITEM)[0] == DELIVERED and len(receiver.requests) == 3 + 6
