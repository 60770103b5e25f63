"""The `limits` block: what one client or one source address may cost the broker. Each
limit refuses the excess and leaves everyone else served."""

import select
import socket
import time

from appliance.mqtt.packets import Subscribe, Subscription
from security_helpers import connected, metric
from tests.broker.raw import RawClient
from tests.conftest import TIMEOUT


def closed_by_broker(sock: socket.socket, timeout: float = TIMEOUT) -> bool:
    """Whether the broker closes `sock` (EOF or reset) within `timeout`."""
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return False
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True


def test_connections_beyond_max_connections_are_closed_at_accept(broker_factory):
    broker = broker_factory("limits { max_connections = 3 }\n")
    clients = [connected(broker.port, f"c{i}") for i in range(3)]
    extra = socket.create_connection(("127.0.0.1", broker.port))
    assert closed_by_broker(extra)
    clients[0].sock.close()
    deadline = time.monotonic() + TIMEOUT
    while True:  # the broker frees the slot once it has seen the close
        try:
            connected(broker.port, "late")
            break
        except (ConnectionError, OSError):
            assert time.monotonic() < deadline, "slot never freed"
    clients[1].roundtrip()
    assert metric(broker, "appliance_connections_refused_total") == 0  # not a CONNACK refusal


def test_connection_rate_per_source_address_is_limited(broker_factory):
    broker = broker_factory("limits { max_connection_rate = 5 }\n")
    socks = [socket.create_connection(("127.0.0.1", broker.port)) for _ in range(5)]
    burst = [socket.create_connection(("127.0.0.1", broker.port)) for _ in range(5)]
    assert any(closed_by_broker(s, 2) for s in burst)
    for sock in socks + burst:
        sock.close()


def test_slowloris_connect_is_cut_at_connect_timeout_however_it_trickles(broker_factory):
    broker = broker_factory("mqtt { connect_timeout = 1s }\n")
    sock = socket.create_connection(("127.0.0.1", broker.port))
    connect = b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x03abc"
    started = time.monotonic()
    for byte in connect[:-1]:  # one byte every 0.3 s: each read alone is within the timeout
        sock.sendall(bytes([byte]))
        if closed_by_broker(sock, 0.3):
            break
    else:
        raise AssertionError("the trickling CONNECT was never cut off")
    assert time.monotonic() - started < 3


def test_topic_over_length_or_levels_is_refused(broker_factory):
    broker = broker_factory("limits { max_topic_length = 32, max_topic_levels = 4 }\n")
    raw = connected(broker.port, "deep")
    assert raw.subscribe("a/b/c/d", 0) == [0]
    assert raw.subscribe("a/b/c/d/e", 0) == [0x8F]
    assert raw.subscribe("x" * 33, 0) == [0x8F]
    raw.publish("a/b/c/d/e", b"x")
    sent = raw.expect_closed()
    assert sent[:1] == b"\xe0" and sent[2] == 0x90
    long_topic = connected(broker.port, "long")
    long_topic.publish("y" * 33, b"x")
    assert long_topic.expect_closed()[2] == 0x90


def test_subscriptions_beyond_max_subscriptions_get_quota_exceeded(broker_factory):
    broker = broker_factory("limits { max_subscriptions = 2 }\n")
    raw = connected(broker.port, "greedy")
    raw.send(Subscribe(1, [Subscription("a", 0), Subscription("b", 0), Subscription("c", 0)]))
    assert raw.expect("SubAck").reason_codes == [0, 0, 0x97]
    assert raw.subscribe("a", 1) == [1]  # replacing one is not a new one
    v3 = connected(broker.port, "greedy3", version=4)
    v3.send(Subscribe(1, [Subscription("a", 0), Subscription("b", 0), Subscription("c", 0)]))
    assert v3.expect("SubAck").reason_codes == [0, 0, 0x80]


def test_retained_store_keeps_at_most_max_retained_messages(broker_factory):
    broker = broker_factory("limits { max_retained_messages = 2 }\n")
    pub = connected(broker.port, "pub")
    for topic in ("r/1", "r/2", "r/3"):
        pub.send_bytes(_retained(topic, b"v"))
    pub.send_bytes(_retained("r/1", b"new"))  # replacing a kept topic is allowed
    pub.roundtrip()
    assert _retained_payloads(broker.port) == {"r/1": b"new", "r/2": b"v"}


def test_retained_store_keeps_at_most_max_retained_bytes(broker_factory):
    broker = broker_factory("limits { max_retained_bytes = 10 }\n")
    pub = connected(broker.port, "pub")
    pub.send_bytes(_retained("r/1", b"123456"))
    pub.send_bytes(_retained("r/2", b"123456"))  # 12 bytes: not kept
    pub.send_bytes(_retained("r/1", b""))  # cleared: room again
    pub.send_bytes(_retained("r/3", b"1234567890"))
    pub.roundtrip()
    assert _retained_payloads(broker.port) == {"r/3": b"1234567890"}


def _retained(topic: str, payload: bytes) -> bytes:
    from appliance.mqtt.codec import encode
    from appliance.mqtt.packets import Publish

    return encode(Publish(topic, payload, 0, True), 5)


def _retained_payloads(port: int) -> dict:
    from appliance.mqtt.packets import PingReq

    sub = RawClient(port, "reader", version=5)
    sub.subscribe("r/#", 0)
    sub.send(PingReq())  # answered after the retained messages
    got = {}
    while type(packet := sub.next_packet()).__name__ == "Publish":
        got[packet.topic] = packet.payload
    return got


def test_deep_topics_within_max_topic_levels_neither_break_metrics_nor_routing(broker_factory, mqtt):
    # Topic levels may be far more than Python's recursion limit allows a recursive walk.
    broker = broker_factory("limits { max_topic_levels = 1024 }\n")
    sub = mqtt(broker.port, "deep-sub")
    sub.connect()
    assert sub.subscribe("/".join(["d"] * 499 + ["#"]), qos=1) == [1]
    assert sub.subscribe("/".join(["+"] * 1000), qos=1) == [1]
    assert metric(broker, "appliance_topics") == 2  # /metrics answered, and counted both
    pub = mqtt(broker.port, "deep-pub")
    pub.connect()
    deep = "/".join(["d"] * 1000)
    pub.publish(deep, b"deep", qos=1)  # waits for the PUBACK: routed without failing
    received = sub.expect_message()
    assert (received.topic, received.payload) == (deep, b"deep")
    assert "RecursionError" not in broker.logs()
