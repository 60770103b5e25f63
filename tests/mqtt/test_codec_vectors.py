"""Byte-exact vectors, written by hand from the MQTT 3.1, 3.1.1 and 5.0 specifications: each
packet encodes to exactly these bytes and these bytes decode to exactly this packet."""

from __future__ import annotations

import pytest

from appliance.mqtt import (
    Auth, ConnAck, Connect, Disconnect, PingReq, PingResp, PubAck, PubComp, Publish, PubRec, PubRel,
    SubAck, Subscribe, Subscription, UnsubAck, Unsubscribe, Will, encode,
)
from codec_helpers import decode_one

VECTORS = [
    # -- CONNECT
    ("connect-3.1", 3, Connect("abc", 3, protocol_name="MQIsdp"),
     "10 11 0006 4d5149736470 03 02 003c 0003 616263"),
    ("connect-3.1.1", 4, Connect("abc", 4), "10 0f 0004 4d515454 04 02 003c 0003 616263"),
    ("connect-3.1.1-not-clean", 4, Connect("abc", 4, clean_start=False, keepalive=0),
     "10 0f 0004 4d515454 04 00 0000 0003 616263"),
    ("connect-3.1.1-will-user-password", 4,
     Connect("abc", 4, username="u", password=b"pw", will=Will("t", b"hi", 1, True)),
     "10 1d 0004 4d515454 04 ee 003c 0003 616263 0001 74 0002 6869 0001 75 0002 7077"),
    ("connect-5-session-expiry", 5, Connect("abc", 5, properties={"session_expiry_interval": 30}),
     "10 15 0004 4d515454 05 02 003c 05 11 0000001e 0003 616263"),
    ("connect-5-will-properties-password-only", 5,
     Connect("", 5, password=b"pw",
             will=Will("t", b"", 2, False, {"will_delay_interval": 10, "content_type": "a"})),
     "10 20 0004 4d515454 05 56 003c 00 0000 09 18 0000000a 03 0001 61 0001 74 0000 0002 7077"),
    # -- CONNACK
    ("connack-3.1", 3, ConnAck(5), "20 02 00 05"),
    ("connack-3.1.1-session-present", 4, ConnAck(0, True), "20 02 01 00"),
    ("connack-5", 5, ConnAck(0), "20 03 00 00 00"),
    ("connack-5-properties", 5, ConnAck(0x87, False, {"maximum_qos": 1, "retain_available": 0}),
     "20 07 00 87 04 24 01 25 00"),
    # -- PUBLISH
    ("publish-3.1-qos0", 3, Publish("a/b", b"hello"), "30 0a 0003 612f62 68656c6c6f"),
    ("publish-3.1.1-qos0", 4, Publish("a/b", b"hello"), "30 0a 0003 612f62 68656c6c6f"),
    ("publish-3.1.1-qos1-dup-retain", 4, Publish("a/b", b"hello", 1, True, True, 7),
     "3b 0c 0003 612f62 0007 68656c6c6f"),
    ("publish-3.1.1-qos2-empty", 4, Publish("a", b"", 2, packet_id=0x1234),
     "34 05 0001 61 1234"),
    ("publish-5-qos0", 5, Publish("a/b", b"hello"), "30 0b 0003 612f62 00 68656c6c6f"),
    ("publish-5-qos1-expiry", 5, Publish("a/b", b"hello", 1, packet_id=7,
                                         properties={"message_expiry_interval": 10}),
     "32 12 0003 612f62 0007 05 02 0000000a 68656c6c6f"),
    ("publish-5-alias-subscription-ids-user-properties", 5,
     Publish("", b"", 0, properties={"topic_alias": 1, "subscription_identifier": [1, 200],
                                     "user_property": [("k", "v"), ("k", "w")]}),
     "30 19 0000 16 23 0001 0b 01 0b c801 26 0001 6b 0001 76 26 0001 6b 0001 77"),
    ("publish-long-remaining-length", 4, Publish("t", bytes(200)),
     "30 cb01 0001 74" + "00" * 200),
    # -- PUBACK, PUBREC, PUBREL, PUBCOMP
    ("puback-3.1.1", 4, PubAck(7), "40 02 0007"),
    ("puback-5-success-short", 5, PubAck(7), "40 02 0007"),
    ("puback-5-reason", 5, PubAck(7, 0x10), "40 03 0007 10"),
    ("puback-5-reason-string", 5, PubAck(7, 0x10, {"reason_string": "x"}),
     "40 08 0007 10 04 1f 0001 78"),
    ("pubrec-3.1", 3, PubRec(0xFFFF), "50 02 ffff"),
    ("pubrec-5-reason", 5, PubRec(1, 0x80), "50 03 0001 80"),
    ("pubrel-3.1.1", 4, PubRel(7), "62 02 0007"),
    ("pubrel-5-not-found", 5, PubRel(7, 0x92), "62 03 0007 92"),
    ("pubcomp-3.1.1", 4, PubComp(7), "70 02 0007"),
    ("pubcomp-5-user-property", 5, PubComp(7, 0, {"user_property": [("a", "b")]}),
     "70 0b 0007 00 07 26 0001 61 0001 62"),
    # -- SUBSCRIBE, SUBACK
    ("subscribe-3.1", 3, Subscribe(1, [Subscription("a/b", 1)]), "82 08 0001 0003 612f62 01"),
    ("subscribe-3.1.1-two-filters", 4, Subscribe(2, [Subscription("a/+", 0), Subscription("#", 2)]),
     "82 0c 0002 0003 612f2b 00 0001 23 02"),
    ("subscribe-5-options-identifier", 5,
     Subscribe(1, [Subscription("a/b", 2, True, True, 2)], {"subscription_identifier": [5]}),
     "82 0b 0001 02 0b 05 0003 612f62 2e"),
    ("suback-3.1.1", 4, SubAck(1, [0, 0x80]), "90 04 0001 00 80"),
    ("suback-5", 5, SubAck(1, [1, 0x87]), "90 05 0001 00 01 87"),
    ("suback-5-reason-string", 5, SubAck(1, [2], {"reason_string": "ok"}),
     "90 09 0001 05 1f 0002 6f6b 02"),
    # -- UNSUBSCRIBE, UNSUBACK
    ("unsubscribe-3.1.1", 4, Unsubscribe(2, ["a/b"]), "a2 07 0002 0003 612f62"),
    ("unsubscribe-5", 5, Unsubscribe(2, ["a/b", "c"]), "a2 0b 0002 00 0003 612f62 0001 63"),
    ("unsuback-3.1", 3, UnsubAck(2), "b0 02 0002"),
    ("unsuback-3.1.1", 4, UnsubAck(2), "b0 02 0002"),
    ("unsuback-5", 5, UnsubAck(2, [0x00, 0x11]), "b0 05 0002 00 00 11"),
    # -- PINGREQ, PINGRESP
    ("pingreq-3.1.1", 4, PingReq(), "c0 00"),
    ("pingreq-5", 5, PingReq(), "c0 00"),
    ("pingresp-3.1", 3, PingResp(), "d0 00"),
    # -- DISCONNECT
    ("disconnect-3.1.1", 4, Disconnect(), "e0 00"),
    ("disconnect-5-normal", 5, Disconnect(), "e0 00"),
    ("disconnect-5-with-will", 5, Disconnect(0x04), "e0 01 04"),
    ("disconnect-5-session-expiry", 5, Disconnect(0, {"session_expiry_interval": 0}),
     "e0 07 00 05 11 00000000"),
    # -- AUTH
    ("auth-5-success", 5, Auth(), "f0 00"),
    ("auth-5-continue", 5, Auth(0x18, {"authentication_method": "SCRM"}),
     "f0 09 18 07 15 0004 5343524d"),
]


@pytest.mark.parametrize("name,version,packet,wire", VECTORS, ids=[v[0] for v in VECTORS])
def test_packet_encodes_to_spec_bytes(name, version, packet, wire):
    assert encode(packet, version) == bytes.fromhex(wire)


@pytest.mark.parametrize("name,version,packet,wire", VECTORS, ids=[v[0] for v in VECTORS])
def test_spec_bytes_decode_to_packet(name, version, packet, wire):
    told = None if isinstance(packet, Connect) else version
    assert decode_one(bytes.fromhex(wire), told) == packet


@pytest.mark.parametrize("version", [3, 4])
def test_v3_suback_says_every_refusal_as_0x80(version):
    assert encode(SubAck(1, [0x87, 0xA2, 2]), version) == bytes.fromhex("90 05 0001 80 80 02")


@pytest.mark.parametrize("version", [3, 4])
def test_v3_omits_v5_only_fields(version):
    assert encode(PubAck(7, 0x10, {"reason_string": "x"}), version) == bytes.fromhex("40 02 0007")
    assert encode(UnsubAck(2, [0x11]), version) == bytes.fromhex("b0 02 0002")
    assert encode(Disconnect(0x04), version) == bytes.fromhex("e0 00")
    assert encode(Publish("a", b"", properties={"topic_alias": 1}), version) == bytes.fromhex("30 03 0001 61")


def test_decoded_connect_reports_the_protocol_name_it_read():
    assert decode_one(bytes.fromhex("10 11 0006 4d5149736470 03 02 003c 0003 616263")).protocol_name == "MQIsdp"


def test_auth_cannot_be_encoded_before_v5():
    with pytest.raises(ValueError):
        encode(Auth(), 4)


def test_connect_version_must_match_the_encoding_version():
    with pytest.raises(ValueError):
        encode(Connect("a", 4), 5)
