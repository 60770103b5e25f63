"""Ordering scopes (webhook.order): what each one keeps in order, and how much of the pool one
publishing client can use with each; a hot key shows in a metric and a warning."""

from __future__ import annotations

import json

from stage_process import sample

POOL = 16


def publish(stage, topic, n, client="gw", first=0):
    stage.publish(None, {"topic": topic, "payload": f"{topic}-", "numbered": True, "first": first,
                         "publisher_id": client}, count=n)


def arrivals(receiver):
    out = []
    for request in receiver.delivered():
        body = json.loads(request.body)
        topic, _, n = body["payload"].rpartition("-")
        out.append((body["from_client_id"], topic, int(n)))
    return out


def test_order_client_posts_one_clients_events_one_at_a_time_in_order(receiver, start_stage):
    receiver.delay = 0.005
    stage = start_stage(receiver.url, pool_size=POOL, order="client")
    for i in range(8):
        publish(stage, f"t/{i}", 10, first=0)
    publish(stage, "other", 30, client="second")
    receiver.wait_delivered(110)
    events = arrivals(receiver)
    gw = [(t, n) for c, t, n in events if c == "gw"]
    assert gw == [(f"t/{i}", n) for i in range(8) for n in range(10)]  # exactly as published
    assert [n for c, t, n in events if c == "second"] == list(range(30))
    assert receiver.max_active <= 2  # one per client, two clients


def test_order_topic_keeps_each_topic_in_order_and_spreads_one_client_over_the_pool(receiver, start_stage):
    receiver.delay = 0.02
    stage = start_stage(receiver.url, pool_size=POOL, order="topic")
    for n in range(10):
        for i in range(32):
            publish(stage, f"t/{i}", 1, first=n)  # one client, round robin over 32 topics
    receiver.wait_delivered(320)
    events = arrivals(receiver)
    for i in range(32):
        assert [n for c, t, n in events if t == f"t/{i}"] == list(range(10))
    assert receiver.max_active >= POOL // 2  # many topics of one client in flight at once
    assert receiver.max_active <= POOL


def test_order_none_uses_every_worker_for_one_topic(receiver, start_stage):
    receiver.delay = 0.05
    stage = start_stage(receiver.url, pool_size=POOL, order="none")
    publish(stage, "one/topic", 200)
    delivered = receiver.wait_delivered(200)
    assert sorted(int(json.loads(r.body)["payload"].rpartition("-")[2]) for r in delivered) == list(range(200))
    assert receiver.max_active == POOL


def test_a_hot_key_shows_in_the_metric_and_a_warning_naming_the_client(receiver, start_stage):
    receiver.stop()  # nothing drains: the one client's backlog grows
    stage = start_stage(receiver.url, pool_size=4, order="client", retry={"max_attempts": 1000})
    publish(stage, "hot/topic", 1500, client="gateway-17")
    publish(stage, "cold", 3, client="quiet")
    metrics = stage.wait_metrics(lambda m: sample(m, "appliance_webhook_key_backlog_max") >= 1500)
    assert sample(metrics, "appliance_webhook_key_backlog_max") == 1500
    stage.wait_metrics(lambda m: "gateway-17" in stage.logs(), timeout=10)
    warnings = [line for line in stage.logs().splitlines() if "gateway-17" in line]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING") and "1500 events" in warnings[0]
