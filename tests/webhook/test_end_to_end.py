"""The real broker with a webhook block: MQTT in over a socket, HTTP out to a real receiver."""

from __future__ import annotations

import json
import socket
import statistics
import time

import paho.mqtt.client as paho
import pytest

from appliance.mqtt.packets import Connect, Disconnect, Will
from tests.broker.raw import RawClient


def webhook_block(url: str, events: str, extra: str = "") -> str:
    return f"""
webhook {{
    url = "{url}"
    body.encoding = plain
    pool_size = 8
    cancel_timeout = 2000
    {extra}
    events = [ {events} ]
}}
"""


ALL = """{ event = "on_client_connack" }, { event = "on_client_disconnected" },
         { event = "on_message_publish", topic = "a/#" }"""


def bodies(requests) -> list[dict]:
    return [json.loads(r.body) for r in requests]


def of_client(requests, client_id: str) -> list[dict]:
    return [b for b in bodies(requests) if client_id in (b.get("clientid"), b.get("from_client_id"))]


def test_connect_publish_disconnect_are_posted_in_order(broker_factory, mqtt, receiver):
    broker = broker_factory(webhook_block(receiver.url + "/mqtt", ALL))
    client = mqtt(broker.port, "pub1")
    client.client.username_pw_set("alice", "pw")
    client.connect()
    client.publish("a/b/c", b"hello", qos=1)
    client.publish("x/not/matched", b"nope", qos=1)
    client.disconnect()
    requests = receiver.wait_delivered(3)
    assert {r.target for r in requests} == {"/mqtt"}
    connack, publish, disconnected = (r.body for r in requests)
    assert connack == (b'{"proto_ver":4,"keepalive":60,"conn_ack":"success","username":"alice",'
                       b'"clientid":"pub1","action":"client_connack"}')
    ts = json.loads(publish)["ts"]
    assert abs(ts - time.time() * 1000) < 60_000  # milliseconds, now
    assert publish == (b'{"ts":%d,"topic":"a/b/c","retain":false,"qos":1,"action":"message_publish",'
                       b'"from_username":"alice","from_client_id":"pub1","payload":"hello"}' % ts)
    assert disconnected == b'{"reason":"normal","username":"alice","clientid":"pub1","action":"client_disconnected"}'


def test_refused_connect_posts_a_failed_connack_then_disconnected(broker_factory, receiver):
    broker = broker_factory(webhook_block(receiver.url, ALL))
    raw = RawClient(broker.port, "", connect=False)
    raw.send(Connect("", 4, clean_start=False))  # empty id with a persistent session: refused
    assert raw.expect("ConnAck").reason_code == 2  # identifier rejected
    first, second = bodies(receiver.wait_delivered(2))
    assert (first["action"], first["conn_ack"]) == ("client_connack", "client_identifier_not_valid")
    assert second["action"] == "client_disconnected" and second["username"] == "undefined"


@pytest.mark.parametrize("how, reason", [("close", "tcp_closed"), ("garbage", "malformed_packet"),
                                         ("takeover", "takenover"), ("idle", "keepalive_timeout")])
def test_disconnected_carries_the_real_reason(broker_factory, receiver, how, reason):
    broker = broker_factory(webhook_block(receiver.url, '{ event = "on_client_disconnected" }'))
    raw = RawClient(broker.port, "victim", connect=False)
    raw.send(Connect("victim", 4, keepalive=1 if how == "idle" else 60))
    raw.expect("ConnAck")
    if how == "close":
        raw.sock.close()
    elif how == "garbage":
        raw.send_bytes(b"\x30\xff\xff\xff\xff\x7f")  # a PUBLISH whose length cannot be
    elif how == "takeover":
        raw = RawClient(broker.port, "victim")  # the successor, kept open: only the first one ends
    (body,) = bodies(receiver.wait_delivered(1))
    assert (body["clientid"], body["reason"]) == ("victim", reason)


def test_will_message_is_posted_as_a_publish_from_the_dead_client(broker_factory, receiver):
    broker = broker_factory(webhook_block(receiver.url, '{ event = "on_message_publish", topic = "a/will" }'))
    raw = RawClient(broker.port, "dying", connect=False)
    raw.send(Connect("dying", 4, username="ghost", will=Will("a/will", b"gone", 1, False)))
    raw.expect("ConnAck")
    raw.sock.close()
    (body,) = bodies(receiver.wait_delivered(1))
    assert (body["from_client_id"], body["from_username"], body["topic"], body["payload"]) == \
        ("dying", "ghost", "a/will", "gone")


def test_no_will_post_after_a_normal_disconnect(broker_factory, receiver):
    broker = broker_factory(webhook_block(receiver.url, '{ event = "on_message_publish" }'))
    raw = RawClient(broker.port, "tidy", connect=False)
    raw.send(Connect("tidy", 4, will=Will("a/will", b"gone")))
    raw.expect("ConnAck")
    raw.send(Disconnect())
    raw.expect_closed()
    marker = RawClient(broker.port, "marker")
    marker.publish("a/marker", b"after")
    (body,) = bodies(receiver.wait_delivered(1))
    assert body["topic"] == "a/marker"


def test_sys_topics_do_not_leak_through_wildcard_rules(broker_factory, mqtt, receiver):
    broker = broker_factory(webhook_block(receiver.url, '{ event = "on_message_publish", topic = "#" }'))
    client = mqtt(broker.port, "p")
    client.connect()
    client.publish("$SYS/fake", b"x", qos=1)
    client.publish("plain/topic", b"y", qos=1)
    (body,) = bodies(receiver.wait_delivered(1))
    assert body["topic"] == "plain/topic"


def test_events_of_each_client_stay_in_order_through_the_broker(broker_factory, mqtt, receiver):
    broker = broker_factory(webhook_block(receiver.url, ALL, "pool_size = 32"))
    clients = [mqtt(broker.port, f"c{i}") for i in range(12)]
    for c in clients:
        c.connect()
    for n in range(15):
        for c in clients:
            c.publish("a/seq", str(n), qos=1)
    for c in clients:
        c.disconnect()
    requests = receiver.wait_delivered(12 * 17)
    for i in range(12):
        seen = [b.get("payload", b["action"]) for b in of_client(requests, f"c{i}")]
        assert seen == ["client_connack", *map(str, range(15)), "client_disconnected"]


def test_sigterm_delivers_server_shutdown_disconnects_before_exit(broker_factory, mqtt, receiver):
    broker = broker_factory(webhook_block(receiver.url, '{ event = "on_client_disconnected" }'))
    for i in range(3):
        mqtt(broker.port, f"s{i}", protocol=paho.MQTTv5).connect()
    assert broker.stop() == 0
    reasons = sorted((b["clientid"], b["reason"]) for b in bodies(receiver.delivered()))
    assert reasons == [(f"s{i}", "server_shutdown") for i in range(3)]


def _latencies(port: int, mqtt, count: int = 200) -> list[float]:
    subscriber = mqtt(port, "lat-sub")
    subscriber.connect()
    subscriber.subscribe("a/lat", qos=1)
    publisher = mqtt(port, "lat-pub")
    publisher.connect()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        publisher.publish("a/lat", b"x", qos=0)
        subscriber.expect_message()
        latencies.append(time.perf_counter() - started)
    return latencies


def test_a_blackholed_endpoint_leaves_publish_to_deliver_latency_unchanged(broker_factory, mqtt, receiver):
    """Not a speed test: the webhook must not sit on the MQTT path at all, so a dead endpoint
    changes nothing beyond noise (a blocking stage would add cancel_timeout to each message)."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(1)  # accepts nothing: connections hang in the backlog, then in SYN_SENT
    try:
        healthy = broker_factory(webhook_block(receiver.url, '{ event = "on_message_publish" }'))
        baseline = statistics.median(_latencies(healthy.port, mqtt))
        dead = broker_factory(webhook_block(f"http://127.0.0.1:{blackhole.getsockname()[1]}",
                                            '{ event = "on_message_publish" }'))
        stuck = statistics.median(_latencies(dead.port, mqtt))
    finally:
        blackhole.close()
    assert stuck < max(3 * baseline, baseline + 0.005), (baseline, stuck)


def test_a_block_whose_rules_never_fire_says_so_at_start(broker_factory):
    broker = broker_factory(webhook_block("http://127.0.0.1:9", ""))
    broker.wait_for_log("nothing will be POSTed")


def test_emqx_events_start_without_the_never_fired_warning(broker_factory):
    broker = broker_factory(webhook_block("http://127.0.0.1:9", '{ event = "on_client_subscribe" }'))
    broker.wait_for_log("started with")
    assert "never fired" not in broker.logs() and "nothing will be POSTed" not in broker.logs()
