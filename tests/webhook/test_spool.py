"""The disk spool and shutdown: nothing lost when the endpoint is down for a while, across a
restart, or at SIGTERM; what cannot be kept is counted."""

import json
import sqlite3

from stage_process import sample

DROPPED = "appliance_webhook_events_dropped_total"
FAST_RETRY = {"max_attempts": 3, "backoff_min": 0.02, "backoff_max": 0.1}


def publish(stage, n, client="p"):
    stage.publish(None, {"topic": "t", "payload": f"{client}-", "numbered": True, "publisher_id": client},
                  count=n)


def by_client(requests):
    seen = {}
    for r in requests:
        payload = json.loads(r.body)["payload"]
        client, _, n = payload.partition("-")
        seen.setdefault(client, []).append(int(n))
    return seen


def spool_rows(directory):
    with sqlite3.connect(directory / "webhook-spool.sqlite3") as db:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def no_drops(metrics):
    return not any(value for (name, _), value in metrics.items() if name == DROPPED)


def test_endpoint_down_for_a_while_then_back_loses_nothing_with_a_spool(receiver, start_stage, tmp_path):
    receiver.stop()
    stage = start_stage(receiver.url, pool_size=4, retry=FAST_RETRY,
                        queue={"max_len": 50, "spool_dir": str(tmp_path)})
    for client in "abcd":
        publish(stage, 300, client)  # 1200 events: far more than memory holds
    stage.wait_metrics(lambda m: sample(m, "appliance_webhook_spool_depth") >= 1000)
    receiver.start()
    requests = receiver.wait_delivered(1200, timeout=60)
    assert by_client(requests) == {client: list(range(300)) for client in "abcd"}  # in order, once each
    metrics = stage.wait_metrics(lambda m: sample(m, "appliance_webhook_spool_depth") == 0)
    assert no_drops(metrics)
    assert len(receiver.requests) == len(requests) or all(a is None for a in receiver.answers[:4])


def test_a_restart_delivers_the_spool_first_then_new_events(receiver, start_stage, tmp_path):
    receiver.stop()
    config = {"pool_size": 2, "retry": FAST_RETRY, "queue": {"max_len": 20, "spool_dir": str(tmp_path)}}
    first = start_stage(receiver.url, **config)
    publish(first, 100, "a")
    publish(first, 40, "b")
    first.stop(timeout=0.2)
    assert spool_rows(tmp_path) == 140
    assert "140 event(s) kept in the spool" in first.logs()

    receiver.start()
    second = start_stage(receiver.url, **config)
    publish(second, 5, "c")
    publish(second, 10, "a")  # continues a's numbering at 0: new events after the spooled ones
    requests = receiver.wait_delivered(155)
    seen = by_client(requests)
    assert seen["a"] == list(range(100)) + list(range(10))
    assert seen["b"] == list(range(40)) and seen["c"] == list(range(5))
    second.stop(timeout=5)
    assert spool_rows(tmp_path) == 0


def test_sigterm_drains_the_queue_before_exiting(receiver, start_stage):
    receiver.delay = 0.01
    stage = start_stage(receiver.url, pool_size=2, drain_timeout=30.0)
    publish(stage, 100, "a")
    publish(stage, 100, "b")
    assert stage.terminate() == 0
    assert by_client(receiver.delivered()) == {"a": list(range(100)), "b": list(range(100))}
    assert "dropped" not in stage.logs()


def test_sigterm_with_the_endpoint_down_spools_the_rest(receiver, start_stage, tmp_path):
    receiver.stop()
    stage = start_stage(receiver.url, pool_size=2, drain_timeout=0.3, retry=FAST_RETRY,
                        queue={"max_len": 1000, "spool_dir": str(tmp_path)})
    publish(stage, 30, "a")
    assert stage.terminate() == 0
    assert spool_rows(tmp_path) == 30
    assert "dropped" not in stage.logs()


def test_sigterm_without_a_spool_counts_and_logs_what_is_left(receiver, start_stage):
    receiver.stop()
    stage = start_stage(receiver.url, pool_size=2, drain_timeout=0.3,
                        retry={"max_attempts": 1000, "backoff_min": 0.05, "backoff_max": 0.1})
    publish(stage, 30, "a")
    assert stage.terminate() == 0
    assert "30 event(s) dropped (shutdown: 30)" in stage.logs()
