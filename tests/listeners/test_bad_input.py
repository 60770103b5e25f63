"""Malformed and hostile input closes only the offending connection, with the right reason."""

import socket

import pytest

from tests.broker.raw import RawClient
from tests.conftest import raw_socket

DISCONNECT = 0xE0


@pytest.fixture
def bystanders(broker, mqtt):
    """A subscriber and a publisher that must not notice anything."""
    sub = mqtt(broker.port, "bystander-sub")
    sub.connect()
    sub.subscribe("calm/#", qos=1)
    pub = mqtt(broker.port, "bystander-pub")
    pub.connect()
    return sub, pub


def _still_served(bystanders, tag):
    sub, pub = bystanders
    pub.publish(f"calm/{tag}", tag, qos=1)
    assert sub.expect_message().payload == tag.encode()



@pytest.mark.parametrize("garbage, reason", [
    (b"\x30\xff\xff\xff\xff\x7f", 0x81),  # remaining length longer than four bytes
    (b"\x82\x05\x00\x01\x00\x01a", 0x81),  # SUBSCRIBE with reserved flags 0000
    (b"\x36\x05\x00\x01a\x00\x01", 0x81),  # PUBLISH QoS 3
    (b"\x30\x05\x00\x03a\xff\xfe", 0x81),  # invalid UTF-8 in the topic
    (b"\x32\x06\x00\x01a\x00\x00\x00", 0x82),  # QoS 1 with packet id 0
    (b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x03abc", 0x82),  # second CONNECT
])
def test_v5_protocol_violation_gets_disconnect_with_reason_and_others_carry_on(broker, bystanders, garbage, reason):
    raw = RawClient(broker.port, "offender", version=5)
    raw.send_bytes(garbage)
    sent = raw.expect_closed()
    assert sent[:1] == bytes([DISCONNECT]) and sent[2] == reason, sent
    _still_served(bystanders, "after")


def test_publish_with_wildcard_topic_is_refused_with_topic_name_invalid(broker, bystanders):
    raw = RawClient(broker.port, "wild", version=5)
    raw.publish("a/+", b"x", qos=0)
    sent = raw.expect_closed()
    assert sent[:1] == bytes([DISCONNECT]) and sent[2] == 0x90
    _still_served(bystanders, "wild")


def test_oversized_packet_is_refused_from_its_fixed_header(broker_factory, mqtt):
    broker = broker_factory("mqtt { max_packet_size = 1KB }\n")
    raw = RawClient(broker.port, "big", version=5)
    # Announce a 100 MB PUBLISH and send none of it: the broker must not wait for the body.
    raw.send_bytes(b"\x30\x80\x80\x80\x30")
    sent = raw.expect_closed()
    assert sent[:1] == bytes([DISCONNECT]) and sent[2] == 0x95


def test_packet_before_connect_closes_the_connection(broker, bystanders):
    sock = raw_socket(broker.port)
    sock.sendall(b"\xc0\x00")  # PINGREQ first
    assert sock.recv(16) == b""
    _still_served(bystanders, "early")


def test_v311_malformed_packet_just_closes(broker, bystanders):
    raw = RawClient(broker.port, "v3bad", version=4)
    raw.send_bytes(b"\x36\x05\x00\x01a\x00\x01")
    assert raw.expect_closed() == b""
    _still_served(bystanders, "v3")


def test_many_half_open_connections_do_not_stop_service(broker, bystanders):
    socks = [socket.create_connection(("127.0.0.1", broker.port)) for _ in range(200)]
    for sock in socks[:100]:
        sock.sendall(b"\x10\x10\x00\x04MQ")  # half a CONNECT
    _still_served(bystanders, "halfopen")
    for sock in socks:
        sock.close()


def test_slow_subscriber_does_not_stall_publisher_or_others(broker, mqtt):
    stuck = raw_socket(broker.port)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02st")
    assert stuck.recv(4) == b"\x20\x02\x00\x00"
    stuck.sendall(b"\x82\x08\x00\x01\x00\x03big\x00")  # SUBSCRIBE big QoS 0, then never read
    healthy = mqtt(broker.port, "healthy")
    healthy.connect()
    healthy.subscribe("big", qos=0)
    pub = mqtt(broker.port, "pub")
    pub.connect()
    payload = b"x" * 65536
    for _ in range(200):  # 13 MB: far more than the stuck socket's buffers
        pub.publish("big", payload, qos=1)  # paced by acks, so only the stuck one lags
    pub.roundtrip()
    healthy.roundtrip()
    assert healthy.messages.qsize() == 200


def test_a_stuck_subscriber_that_is_taken_over_gives_its_socket_up(broker_factory, mqtt):
    # Its writer is blocked on a full socket; a takeover must still free the socket and the
    # max_connections place it holds, after a short grace for the queued bytes.
    broker = broker_factory("limits { max_connections = 3, max_connection_rate = 0 }\n")
    stuck = raw_socket(broker.port)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02st")
    assert stuck.recv(4) == b"\x20\x02\x00\x00"
    stuck.sendall(b"\x82\x08\x00\x01\x00\x03big\x00")  # SUBSCRIBE big QoS 0, then never read
    assert stuck.recv(5) == b"\x90\x03\x00\x01\x00"
    pub = mqtt(broker.port, "pub")
    pub.connect()
    for _ in range(100):  # 6.5 MB: far more than the stuck socket's buffers
        pub.publish("big", b"x" * 65536, qos=1)
    pub.roundtrip()
    successor = RawClient(broker.port, "st")  # takes the session over: 3 sockets open, the limit
    broker.wait_for_log(r"connection of st@127\.0\.0\.1:\d+ closed with \d+ byte\(s\) unsent")
    RawClient(broker.port, "fourth").roundtrip()  # the stuck socket's place is free again
    successor.roundtrip()
