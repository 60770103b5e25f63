"""The decoder on a byte stream: packets split across reads, many packets in one read."""

from __future__ import annotations

import pytest

from appliance.mqtt import (
    ConnAck, Connect, Disconnect, MqttDecoder, PingReq, PubAck, Publish, PubRel, Subscribe,
    Subscription, Unsubscribe, Will, encode, publish_parts,
)


def session(version: int) -> list:
    """What a client sends in a short session, CONNECT first."""
    properties = {"user_property": [("k", "v")]} if version == 5 else {}
    return [
        Connect("sensor-1", version, username="u", password=b"p", will=Will("w", b"gone", 1),
                protocol_name="MQIsdp" if version == 3 else "MQTT"),
        Subscribe(1, [Subscription("a/#", 1), Subscription("b", 2)]),
        Publish("a/b", b"x" * 300, 1, packet_id=2, properties=properties),  # two-byte length
        Publish("a/c", b"", 0),
        Publish("a/d", bytes(range(256)) * 70, 2, packet_id=3),  # three-byte length
        PubRel(3),
        PubAck(9),
        PingReq(),
        Unsubscribe(4, ["a/#"]),
        Disconnect(),
    ]


@pytest.mark.parametrize("version", [3, 4, 5])
def test_one_byte_at_a_time_gives_the_same_packets(version):
    packets = session(version)
    stream = b"".join(encode(p, version) for p in packets)
    decoder = MqttDecoder()
    decoded = []
    for i in range(len(stream)):
        decoded += decoder.feed(stream[i:i + 1])
    assert decoded == packets
    assert decoder.protocol_version == version


@pytest.mark.parametrize("version", [3, 4, 5])
def test_many_packets_in_one_feed(version):
    packets = session(version)
    decoder = MqttDecoder()
    assert decoder.feed(b"".join(encode(p, version) for p in packets)) == packets


def test_reads_that_end_mid_packet_resume_where_they_stopped():
    first, second = encode(Publish("t", b"1" * 1000), 4), encode(Publish("t", b"2" * 10), 4)
    stream = first + second
    decoder = MqttDecoder(protocol_version=4)
    assert decoder.feed(stream[:1]) == []
    assert decoder.feed(stream[1:2]) == []  # the remaining length is still incomplete
    assert decoder.feed(stream[2:500]) == []
    assert decoder.feed(stream[500:len(first) + 3]) == [Publish("t", b"1" * 1000)]
    assert decoder.feed(stream[len(first) + 3:]) == [Publish("t", b"2" * 10)]


def test_feed_accepts_bytearray_and_memoryview():
    data = encode(PubAck(1), 4) + encode(PubAck(2), 4)
    decoder = MqttDecoder(protocol_version=4)
    assert decoder.feed(bytearray(data[:5])) == [PubAck(1)]
    assert decoder.feed(memoryview(data)[5:]) == [PubAck(2)]


def test_feeding_nothing_yields_nothing():
    decoder = MqttDecoder()
    assert decoder.feed(b"") == []
    assert decoder.protocol_version is None


def test_a_tool_that_sets_the_version_reads_the_server_side_without_connect():
    decoder = MqttDecoder(protocol_version=5)
    assert decoder.feed(encode(ConnAck(0, True), 5)) == [ConnAck(0, True)]


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_parts_around_the_packet_id_make_the_packet(version, qos):
    properties = {"content_type": "text/plain"} if version == 5 else {}
    template = Publish("a/b", b"payload" * 40, qos, retain=True, properties=properties)
    head, tail = publish_parts(template, version)
    for packet_id in (1, 513, 65535):
        expected = Publish("a/b", b"payload" * 40, qos, True, False, packet_id if qos else None,
                           properties)
        wire = head + packet_id.to_bytes(2, "big") + tail if qos else head + tail
        assert wire == encode(expected, version)
        assert MqttDecoder(protocol_version=version).feed(wire) == [expected]


def test_publish_parts_resend_sets_dup_in_the_first_byte():
    head, tail = publish_parts(Publish("a", b"x", 1), 4)
    resend = bytes((head[0] | 0x08,)) + head[1:] + (5).to_bytes(2, "big") + tail
    assert MqttDecoder(protocol_version=4).feed(resend) == [Publish("a", b"x", 1, False, True, 5)]
