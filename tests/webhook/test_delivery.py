"""Delivery: 2xx delivered, retries with backoff for what retrying can fix, order per client,
bounded memory with counted drops, and https."""

import json

from stage_process import sample

FAST_RETRY = {"max_attempts": 8, "backoff_min": 0.05, "backoff_max": 0.2}
REQUESTS = "appliance_webhook_requests_total"
DROPPED = "appliance_webhook_events_dropped_total"


def publish(stage, n=1, client="p", topic="t"):
    stage.publish(None, {"topic": topic, "payload": "m", "numbered": True, "publisher_id": client}, count=n)


def payloads(requests):
    return [json.loads(r.body)["payload"] for r in requests]


def count(metrics, outcome, reason=""):
    return sample(metrics, REQUESTS, event="message_publish", outcome=outcome, reason=reason)


def after_delivering(stage, n=1):
    """The stage's metrics once it has counted `n` deliveries (the receiver sees them first)."""
    return stage.wait_metrics(lambda m: count(m, "delivered") >= n)


def test_5xx_is_retried_with_growing_backoff_then_delivered(receiver, start_stage):
    receiver.plan = [(500, 0, False), (503, 0, False), (502, 0, False)]
    stage = start_stage(receiver.url, retry=FAST_RETRY)
    publish(stage)
    receiver.wait_delivered(1)
    assert len(receiver.requests) == 4 and len({r.body for r in receiver.requests}) == 1
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:])]
    # backoff doubles from backoff_min, with jitter in [half, full] of each step
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05 and gaps[2] >= 0.1, gaps
    metrics = after_delivering(stage)
    assert count(metrics, "retried", "http_5xx") == 3
    assert count(metrics, "delivered") == 1


def test_408_and_429_are_retried_other_4xx_fail_without_retry(receiver, start_stage):
    receiver.plan = [(408, 0, False), (429, 0, False), (400, 0, False)]
    stage = start_stage(receiver.url, retry=FAST_RETRY, pool_size=1)
    publish(stage, 2)  # the first: 408, 429, then 400 (given up); the second: delivered
    receiver.wait_delivered(1)
    assert receiver.answers == [408, 429, 400, 200]
    assert payloads(receiver.delivered()) == ["m1"]
    metrics = after_delivering(stage)
    assert count(metrics, "failed", "http_4xx") == 1
    assert count(metrics, "retried", "http_4xx") == 2
    assert sample(metrics, DROPPED, reason="rejected") == 1


def test_connection_close_answers_are_honoured_without_retries(receiver, start_stage):
    receiver.connection_close = True
    stage = start_stage(receiver.url, pool_size=1)
    publish(stage, 5)
    assert payloads(receiver.wait_delivered(5)) == ["m0", "m1", "m2", "m3", "m4"]
    assert receiver.connections == 5
    metrics = after_delivering(stage, 5)
    assert not any(v for (name, labels), v in metrics.items()
                   if name == REQUESTS and ("outcome", "retried") in labels)


def test_connection_closed_mid_request_is_retried(receiver, start_stage):
    receiver.plan = [(0, 0, True)]
    stage = start_stage(receiver.url, retry=FAST_RETRY)
    publish(stage)
    receiver.wait_delivered(1)
    assert receiver.answers == [None, 200]
    assert count(after_delivering(stage), "retried", "other") == 1


def test_slow_endpoint_times_out_after_cancel_timeout_and_is_retried(receiver, start_stage):
    receiver.plan = [(200, 1.0, False)]
    stage = start_stage(receiver.url, retry=FAST_RETRY, cancel_timeout=0.3)
    publish(stage)
    receiver.wait_for(lambda r: len(r.requests) == 2)
    metrics = after_delivering(stage)
    assert count(metrics, "retried", "timeout") == 1
    assert count(metrics, "delivered") == 1


def test_refused_connections_are_retried_until_the_endpoint_listens(receiver, start_stage):
    receiver.stop()
    stage = start_stage(receiver.url, retry={"max_attempts": 100, "backoff_min": 0.02, "backoff_max": 0.1})
    publish(stage, 5)
    stage.wait_metrics(lambda m: count(m, "retried", "refused") >= 3)
    receiver.start()
    assert payloads(receiver.wait_delivered(5)) == ["m0", "m1", "m2", "m3", "m4"]


def test_events_of_each_client_keep_their_order_with_32_workers(receiver, start_stage):
    stage = start_stage(receiver.url, [{"event": "on_client_connack"}, {"event": "on_message_publish"},
                                       {"event": "on_client_disconnected"}], pool_size=32)
    clients = [{"client_id": f"c{i}"} for i in range(64)]
    for c in clients:
        stage.connack(c)
    for round_ in range(10):
        for c in clients:
            stage.publish(c, {"topic": "t", "payload": str(round_), "publisher_id": c["client_id"]})
    for c in clients:
        stage.disconnected(c, "normal")
    requests = receiver.wait_delivered(64 * 12)
    seen = {}
    for r in requests:
        body = json.loads(r.body)
        client = body.get("clientid") or body.get("from_client_id")
        seen.setdefault(client, []).append(body.get("payload", body["action"]))
    expected = ["client_connack", *map(str, range(10)), "client_disconnected"]
    assert seen == {c["client_id"]: expected for c in clients}
    assert receiver.connections > 1  # it really ran in parallel


def test_without_spool_a_dead_endpoint_drops_exactly_what_is_counted(receiver, start_stage):
    receiver.stop()
    stage = start_stage(receiver.url, pool_size=2, queue={"max_len": 10},
                        retry={"max_attempts": 2, "backoff_min": 0.01, "backoff_max": 0.02})
    publish(stage, 100, client="a")
    publish(stage, 100, client="b")

    def dropped(metrics):
        return sample(metrics, DROPPED, reason="queue_full") + sample(metrics, DROPPED, reason="retries_exhausted")

    metrics = stage.wait_metrics(lambda m: dropped(m) >= 200)
    assert dropped(metrics) == 200  # every event lost is counted, once
    # memory held at most max_len queued plus one in flight per worker
    assert 200 - 10 - 2 <= sample(metrics, DROPPED, reason="queue_full") <= 190
    assert sample(metrics, "appliance_webhook_queue_depth") == 0
    receiver.start()
    publish(stage, 3, client="a")
    assert payloads(receiver.wait_delivered(3)) == ["m0", "m1", "m2"]
    assert len(receiver.requests) == 3
    drop_lines = [line for line in stage.logs().splitlines() if "dropped" in line]
    assert 1 <= len(drop_lines) <= 3, drop_lines  # rate-limited, not a line per event


def test_https_with_a_private_ca_and_a_client_certificate(tmp_path, start_stage):
    import ssl

    from certificates import make_pki
    from webhook_receiver import Receiver

    pki = make_pki(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca"])
    context.load_cert_chain(pki["server_cert"], pki["server_key"])
    context.verify_mode = ssl.CERT_REQUIRED
    receiver = Receiver(tls=context)
    try:
        stage = start_stage(receiver.url + "/secure", tls={"cacertfile": pki["ca"], "certfile": pki["client_cert"],
                                                          "keyfile": pki["client_key"]})
        publish(stage)
        (request,) = receiver.wait_delivered(1)
        assert request.target == "/secure"
    finally:
        receiver.stop()


def test_https_refuses_a_server_its_ca_does_not_vouch_for(tmp_path, start_stage):
    import ssl

    from certificates import make_pki
    from webhook_receiver import Receiver

    pki = make_pki(tmp_path)
    other = make_pki(tmp_path / "other")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["server_cert"], pki["server_key"])
    receiver = Receiver(tls=context)
    try:
        stage = start_stage(receiver.url, tls={"cacertfile": other["ca"]},
                            retry={"max_attempts": 2, "backoff_min": 0.01, "backoff_max": 0.02})
        publish(stage)
        metrics = stage.wait_metrics(lambda m: sample(m, DROPPED, reason="retries_exhausted"))
        assert count(metrics, "failed", "tls") == 1
        assert receiver.requests == []
    finally:
        receiver.stop()
