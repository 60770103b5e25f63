"""Bad input: each violation raises the error whose reason code the broker answers with."""

from __future__ import annotations

import pytest

from appliance.mqtt import (
    MalformedPacket, MqttDecoder, PacketTooLarge, ProtocolError, PubAck, Publish,
    UnsupportedProtocolVersion, encode,
)
from appliance.mqtt import reason_codes as rc
from codec_helpers import CONNECT_BYTES, after_connect, decode_all

MALFORMED = (MalformedPacket, rc.MALFORMED_PACKET)
PROTOCOL = (ProtocolError, rc.PROTOCOL_ERROR)

# (name, version the decoder is told (None: it must read CONNECT), hex bytes, expected error)
CASES = [
    # -- fixed header
    ("remaining-length-five-bytes", 4, "30 ff ff ff ff 01", MALFORMED),
    ("reserved-packet-type-0", 4, "00 00", MALFORMED),
    ("auth-before-v5", 4, "f0 00", MALFORMED),
    ("subscribe-flags-0000", 4, "80 08 0001 0003 612f62 01", MALFORMED),
    ("unsubscribe-flags-0000", 4, "a0 07 0002 0003 612f62", MALFORMED),
    ("pubrel-flags-0000", 4, "60 02 0007", MALFORMED),
    ("puback-flags-0010", 4, "42 02 0007", MALFORMED),
    ("pingreq-flags-0001", 4, "c1 00", MALFORMED),
    ("disconnect-flags-1000", 5, "e8 00", MALFORMED),
    ("connect-flags-0010", None, "12 0f 0004 4d515454 04 02 003c 0003 616263", MALFORMED),
    # -- PUBLISH
    ("publish-qos3", 4, "36 07 0003 612f62 0001", MALFORMED),
    ("publish-qos0-dup", 4, "38 05 0003 612f62", MALFORMED),
    ("publish-qos1-packet-id-0", 4, "32 07 0003 612f62 0000", PROTOCOL),
    ("publish-topic-overruns-packet", 4, "30 05 0009 612f62", MALFORMED),
    ("publish-truncated-packet-id", 4, "32 06 0003 612f62 00", MALFORMED),
    ("publish-topic-invalid-utf8", 4, "30 05 0003 61ff62", MALFORMED),
    ("publish-topic-u0000", 4, "30 05 0003 610062", MALFORMED),
    ("publish-topic-surrogate", 4, "30 06 0004 61eda080", MALFORMED),
    ("publish-topic-overlong-utf8", 4, "30 04 0002 c0af", MALFORMED),
    ("publish-v5-missing-properties", 5, "30 05 0003 612f62", MALFORMED),
    # -- properties
    ("property-unknown-id", 5, "30 07 0003 612f62 01 7f", MALFORMED),
    ("property-wrong-packet-type", 5, "30 09 0003 612f62 03 21 0001", MALFORMED),
    ("property-length-overruns-packet", 5, "30 07 0003 612f62 09 01", MALFORMED),
    ("property-value-overruns-block", 5, "30 08 0003 612f62 02 02 00 000000", MALFORMED),
    ("property-string-overruns-block", 5, "30 0a 0003 612f62 04 03 0005 61", MALFORMED),
    ("property-string-invalid-utf8", 5, "30 0b 0003 612f62 05 03 0002 c328", MALFORMED),
    ("property-duplicate", 5, "30 10 0003 612f62 0a 02 00000001 02 00000002", PROTOCOL),
    ("property-payload-format-2", 5, "30 08 0003 612f62 02 01 02", PROTOCOL),
    ("property-subscription-identifier-0", 5, "30 08 0003 612f62 02 0b 00", PROTOCOL),
    ("subscribe-two-subscription-identifiers", 5, "82 0d 0001 04 0b 01 0b 02 0003 612f62 00", PROTOCOL),
    ("connect-receive-maximum-0", None, "10 10 0004 4d515454 05 02 003c 03 21 0000 0000", PROTOCOL),
    ("connect-request-problem-information-2", None,
     "10 0f 0004 4d515454 05 02 003c 02 17 02 0000", PROTOCOL),
    ("connect-maximum-packet-size-0", None,
     "10 12 0004 4d515454 05 02 003c 05 27 00000000 0000", PROTOCOL),
    ("will-property-in-connect-properties", None,
     "10 12 0004 4d515454 05 02 003c 05 18 00000001 0000", MALFORMED),
    # -- CONNECT
    ("connect-reserved-flag", None, "10 0f 0004 4d515454 04 03 003c 0003 616263", MALFORMED),
    ("connect-will-qos-without-will-flag", None, "10 0f 0004 4d515454 04 0a 003c 0003 616263", MALFORMED),
    ("connect-will-retain-without-will-flag", None, "10 0f 0004 4d515454 04 22 003c 0003 616263", MALFORMED),
    ("connect-will-qos-3", None,
     "10 14 0004 4d515454 04 1e 003c 0003 616263 0001 74 0000", MALFORMED),
    ("connect-3.1.1-password-without-username", None,
     "10 13 0004 4d515454 04 42 003c 0003 616263 0002 7077", MALFORMED),
    ("connect-3.1-password-without-username", None,
     "10 13 0006 4d5149736470 03 42 003c 0003 616263 0000", MALFORMED),
    ("connect-client-id-invalid-utf8", None, "10 0f 0004 4d515454 04 02 003c 0003 61ff63", MALFORMED),
    ("connect-trailing-bytes", None, "10 10 0004 4d515454 04 02 003c 0003 616263 00", MALFORMED),
    ("connect-truncated-will", None, "10 12 0004 4d515454 04 06 003c 0003 616263 0001 74", MALFORMED),
    ("connect-truncated-variable-header", None, "10 08 0004 4d515454 04 02", MALFORMED),
    # -- acknowledgements
    ("puback-packet-id-0", 4, "40 02 0000", PROTOCOL),
    ("puback-truncated", 4, "40 01 00", MALFORMED),
    ("puback-3.1.1-extra-byte", 4, "40 03 0007 00", MALFORMED),
    ("puback-5-invalid-reason-code", 5, "40 03 0007 05", PROTOCOL),
    ("pubrel-5-invalid-reason-code", 5, "62 03 0007 10", PROTOCOL),
    ("puback-5-trailing-after-properties", 5, "40 05 0007 00 00 00", MALFORMED),
    ("connack-reserved-flags", 4, "20 02 02 00", MALFORMED),
    ("connack-3.1.1-return-code-6", 4, "20 02 00 06", PROTOCOL),
    ("pingreq-with-body", 4, "c0 01 00", MALFORMED),
    ("disconnect-3.1.1-with-body", 4, "e0 01 00", MALFORMED),
    ("disconnect-5-invalid-reason-code", 5, "e0 01 05", PROTOCOL),
    ("auth-invalid-reason-code", 5, "f0 01 01", PROTOCOL),
    # -- SUBSCRIBE, UNSUBSCRIBE
    ("subscribe-packet-id-0", 4, "82 08 0000 0003 612f62 01", PROTOCOL),
    ("subscribe-no-topic-filters", 4, "82 02 0001", PROTOCOL),
    ("subscribe-5-no-topic-filters", 5, "82 03 0001 00", PROTOCOL),
    ("subscribe-missing-options", 4, "82 07 0001 0003 612f62", MALFORMED),
    ("subscribe-qos3", 4, "82 08 0001 0003 612f62 03", MALFORMED),
    ("subscribe-3.1.1-reserved-option-bits", 4, "82 08 0001 0003 612f62 04", MALFORMED),
    ("subscribe-5-reserved-option-bits", 5, "82 09 0001 00 0003 612f62 40", MALFORMED),
    ("subscribe-5-retain-handling-3", 5, "82 09 0001 00 0003 612f62 30", MALFORMED),
    ("subscribe-filter-u0000", 4, "82 08 0001 0003 610062 01", MALFORMED),
    ("unsubscribe-no-topic-filters", 4, "a2 02 0001", PROTOCOL),
    ("unsubscribe-packet-id-0", 4, "a2 07 0000 0003 612f62", PROTOCOL),
    ("suback-invalid-return-code", 4, "90 03 0001 03", PROTOCOL),
    ("unsuback-3.1.1-with-payload", 4, "b0 03 0002 00", MALFORMED),
]


@pytest.mark.parametrize("name,version,wire,expected", CASES, ids=[c[0] for c in CASES])
def test_violation_raises_error_with_reason_code(name, version, wire, expected):
    error_class, reason_code = expected
    with pytest.raises(error_class) as info:
        decode_all(bytes.fromhex(wire), version)
    assert info.value.reason_code == reason_code


@pytest.mark.parametrize("wire,name,level", [
    ("10 0f 0004 4d515454 06 02 003c 0003 616263", "MQTT", 6),
    ("10 0f 0004 4d515454 03 02 003c 0003 616263", "MQTT", 3),
    ("10 11 0006 4d5149736470 04 02 003c 0003 616263", "MQIsdp", 4),
    ("10 0f 0004 48545450 04 02 003c 0003 616263", "HTTP", 4),
])
def test_unknown_protocol_name_or_level_carries_what_it_saw(wire, name, level):
    decoder = MqttDecoder()
    with pytest.raises(UnsupportedProtocolVersion) as info:
        decoder.feed(bytes.fromhex(wire))
    assert info.value.reason_code == rc.UNSUPPORTED_PROTOCOL_VERSION
    assert (info.value.protocol_name, info.value.protocol_level) == (name, level)
    assert decoder.protocol_version is None


def test_v5_allows_password_without_username():
    packet = decode_all(bytes.fromhex("10 12 0004 4d515454 05 42 003c 00 0001 61 0002 7077"))[0]
    assert (packet.username, packet.password) == (None, b"pw")


def test_publish_may_repeat_subscription_identifier():
    packet = decode_all(bytes.fromhex("30 0a 0003 612f62 04 0b 01 0b 02"), 5)[0]
    assert packet.properties == {"subscription_identifier": [1, 2]}


def test_packet_too_large_is_raised_from_the_fixed_header_alone():
    decoder = MqttDecoder(max_packet_size=100)
    decoder.feed(CONNECT_BYTES[4])
    with pytest.raises(PacketTooLarge) as info:
        decoder.feed(bytes.fromhex("30 ff ff 7f"))  # announces ~2 MB; none of it has arrived
    assert info.value.reason_code == rc.PACKET_TOO_LARGE


def test_packet_too_large_counts_the_fixed_header():
    publish = encode(Publish("t", bytes(95)), 4)  # 2 + 3 + 95 = 100 bytes
    assert len(publish) == 100
    assert decode_all(publish, 4, max_packet_size=100) == [Publish("t", bytes(95))]
    with pytest.raises(PacketTooLarge):
        decode_all(publish, 4, max_packet_size=99)


def test_remaining_length_of_five_bytes_is_refused_before_more_arrives():
    decoder = MqttDecoder(protocol_version=4)
    with pytest.raises(MalformedPacket):
        decoder.feed(bytes.fromhex("30 80 80 80 80"))


def test_first_packet_must_be_connect():
    with pytest.raises(ProtocolError):
        MqttDecoder().feed(encode(Publish("a", b"x"), 4))


@pytest.mark.parametrize("version", [3, 4, 5])
def test_second_connect_is_a_protocol_error(version):
    with pytest.raises(ProtocolError):
        after_connect(version, CONNECT_BYTES[version])


def test_packets_before_an_error_are_handed_over_with_it():
    good = encode(Publish("a", b"1"), 4) + encode(PubAck(3), 4)
    with pytest.raises(MalformedPacket) as info:
        after_connect(4, good + bytes.fromhex("36 00"))
    assert info.value.packets == [Publish("a", b"1"), PubAck(3)]


def test_decoder_stays_failed_after_an_error():
    decoder = MqttDecoder(protocol_version=4)
    with pytest.raises(MalformedPacket):
        decoder.feed(bytes.fromhex("36 00"))
    with pytest.raises(MalformedPacket) as info:
        decoder.feed(encode(Publish("a", b"1"), 4))
    assert info.value.packets == []


def test_topic_semantics_are_left_to_the_broker():
    packets = decode_all(encode(Publish("a/+/#", b""), 4) + encode(Publish("", b""), 4), 4)
    assert [p.topic for p in packets] == ["a/+/#", ""]
