"""Hostile input beyond tests/listeners/test_bad_input.py: each attack closes only its own
connection with the right reason, and a bystander's QoS 1 stream, flowing before and after,
arrives whole and in order."""

import socket

import pytest

from tests.broker.raw import RawClient
from tests.conftest import TIMEOUT

DISCONNECT = 0xE0
CONNECT_V5 = b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x03bad"


@pytest.fixture
def stream(broker, mqtt):
    """Publishes numbered QoS 1 messages from a bystander; `check()` proves all arrived once, in order."""
    sub = mqtt(broker.port, "stream-sub")
    sub.connect()
    sub.subscribe("stream/#", qos=1)
    pub = mqtt(broker.port, "stream-pub")
    pub.connect()
    sent = []

    class Stream:
        def send(self, count=10):
            for _ in range(count):
                sent.append(str(len(sent)).encode())
                pub.publish("stream/n", sent[-1], qos=1)

        def check(self):
            got = [sub.expect_message().payload for _ in sent]
            assert got == sent
            sub.expect_no_message()

    flow = Stream()
    flow.send()
    return flow


V5_ATTACKS = [
    ("duplicate property", b"\x30\x08\x00\x01a\x04\x01\x00\x01\x01", 0x82),
    ("property forbidden in PUBLISH", b"\x30\x09\x00\x01a\x05\x11\x00\x00\x00\x01", 0x81),
    ("property length overruns packet", b"\x30\x05\x00\x01a\x09\x01", 0x81),
    ("invalid UTF-8 in a user property", b"\x30\x0b\x00\x01a\x07\x26\x00\x01\xff\x00\x01b", 0x81),
    ("topic alias 0", b"\x30\x07\x00\x01a\x03\x23\x00\x00", 0x94),
    ("PUBREL with wrong flags", b"\x60\x02\x00\x01", 0x81),
    ("PINGREQ with flags", b"\xc1\x00", 0x81),
    ("SUBSCRIBE with packet id 0", b"\x82\x07\x00\x00\x00\x00\x01a\x00", 0x82),
    ("SUBSCRIBE asking QoS 3", b"\x82\x07\x00\x01\x00\x00\x01a\x03", 0x81),
    ("reserved packet type 0", b"\x00\x00", 0x81),
    ("remaining length of five bytes", b"\x30\x80\x80\x80\x80\x01", 0x81),
]


@pytest.mark.parametrize("name, attack, reason", V5_ATTACKS, ids=[a[0] for a in V5_ATTACKS])
def test_v5_attack_closes_only_the_attacker_with_its_reason(broker, stream, name, attack, reason):
    raw = RawClient(broker.port, "attacker", version=5)
    raw.send_bytes(attack)
    sent = raw.expect_closed()
    assert sent[:1] == bytes([DISCONNECT]) and sent[2] == reason, sent
    stream.send()
    stream.check()


PRE_CONNECT_ATTACKS = [
    ("PUBLISH before CONNECT", b"\x30\x03\x00\x01a"),
    ("CONNECT with will QoS 3", b"\x10\x10\x00\x04MQTT\x05\x1e\x00\x3c\x00\x00\x03abc"),
    ("CONNECT with the reserved flag", b"\x10\x10\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x03abc"),
    ("invalid UTF-8 client id", b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x03a\xff\xfe"),
    ("truncated CONNECT then EOF", CONNECT_V5[:9]),
    ("truncated remaining length then EOF", b"\x10\xff"),
    ("garbage", bytes(range(256))),
]


@pytest.mark.parametrize("name, attack", PRE_CONNECT_ATTACKS, ids=[a[0] for a in PRE_CONNECT_ATTACKS])
def test_attack_before_connect_is_closed_without_a_session(broker, stream, name, attack):
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT)
    sock.sendall(attack)
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(4096):  # at most a CONNACK with a failure code, then EOF
        pass
    sock.close()
    stream.send()
    stream.check()


def test_oversized_connect_is_refused_from_its_header(broker_factory, mqtt):
    broker = broker_factory("mqtt { max_packet_size = 1KB }\n")
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT)
    sock.sendall(b"\x10\xff\xff\xff\x7f")  # a 256 MB CONNECT, none of it sent
    assert sock.recv(16) == b""


def test_half_open_connections_are_all_reaped_at_connect_timeout(broker_factory, mqtt):
    broker = broker_factory("mqtt { connect_timeout = 1s }\n")
    socks = [socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT) for _ in range(100)]
    for sock in socks[::2]:
        sock.sendall(CONNECT_V5[:5])
    assert all(sock.recv(16) == b"" for sock in socks)
    client = mqtt(broker.port, "after")
    assert client.connect()[1] == 0


def test_denied_and_malformed_traffic_mixed_with_normal_traffic_loses_nothing(broker, stream):
    attackers = [RawClient(broker.port, f"a{i}", version=5) for i in range(5)]
    for i, raw in enumerate(attackers):
        raw.send_bytes(V5_ATTACKS[i][1])
        stream.send(2)
    for raw in attackers:
        assert raw.expect_closed()[:1] == bytes([DISCONNECT])
    stream.check()


def test_packets_after_disconnect_in_the_same_read_as_a_malformed_one_are_ignored(broker, stream):
    # Found by tests/fuzz: DISCONNECT, PUBLISH and garbage in one segment made the listener
    # hand the PUBLISH to a client it had just closed (a traceback per connection).
    raw = RawClient(broker.port, "fuzzed", version=4)
    raw.send_bytes(b"\xe0\x00" + b"\x34\x05\x00\x01a\x00\x01" + b"\x00\x00")  # QoS 2 PUBLISH
    assert raw.expect_closed() == b""
    stream.send()
    stream.check()
    assert "Traceback" not in broker.logs()
