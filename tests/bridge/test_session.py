"""The upstream session's protocol decisions, driven packet by packet in memory (the link
is only I/O around it)."""

from __future__ import annotations

import pytest

from appliance.bridge.queue import Outgoing
from appliance.bridge.session import Refused, UpstreamSession
from appliance.config.bridges import BridgeConfig, BridgeSubscription
from appliance.mqtt import ConnAck, PubAck, PubComp, Publish, PubRec, PubRel, SubAck


def session(proto_ver: int = 5, **kwargs) -> UpstreamSession:
    return UpstreamSession(BridgeConfig("b", "127.0.0.1", 1883, proto_ver=proto_ver, clientid="c", **kwargs), 1 << 20)


def test_connack_refusal_names_the_reason():
    with pytest.raises(Refused, match=r"bad user name or password \(0x86\)"):
        session().on_connack(ConnAck(0x86))
    with pytest.raises(Refused, match=r"not authorized \(0x05\)"):
        session(4).on_connack(ConnAck(5))


def test_the_upstreams_receive_maximum_bounds_the_window():
    s = session()
    s.on_connack(ConnAck(0, properties={"receive_maximum": 2}))
    s.publish_packet(Outgoing("t", b"1", 1, False), 0.0)
    assert s.can_send()
    s.publish_packet(Outgoing("t", b"2", 1, False), 0.0)
    assert not s.can_send()


def test_qos2_forward_completes_after_pubrec_pubrel_pubcomp():
    s = session()
    entry = Outgoing("t", b"x", 2, False, seq=9)
    packet = s.publish_packet(entry, 1.0)
    replies, _, finished, _ = s.on_packet(PubRec(packet.packet_id), 1.5)
    assert replies == [PubRel(packet.packet_id)] and finished is None
    _, _, finished, _ = s.on_packet(PubComp(packet.packet_id), 2.0)
    assert finished == (entry, 1.0, None)
    assert not s.inflight


def test_an_error_puback_finishes_the_message_as_refused():
    s = session()
    packet = s.publish_packet(Outgoing("t", b"x", 1, False), 0.0)
    _, _, finished, _ = s.on_packet(PubAck(packet.packet_id, 0x87), 0.1)
    assert finished[2] == 0x87


def test_inbound_qos2_is_routed_once_even_when_resent_before_pubrel():
    s = session()
    first = s.on_packet(Publish("a", b"x", 2, packet_id=5), 0.0)
    again = s.on_packet(Publish("a", b"x", 2, dup=True, packet_id=5), 0.0)
    assert first[1] is not None and again[1] is None
    assert first[0] == again[0] == [PubRec(5)]
    assert s.on_packet(PubRel(5), 0.0)[0] == [PubComp(5)]
    assert s.on_packet(Publish("a", b"y", 2, packet_id=5), 0.0)[1] is not None  # a new message now


def test_v311_resends_with_dup_after_resend_wait_and_v5_never_does():
    old = session(4)
    packet = old.publish_packet(Outgoing("t", b"x", 1, False), 0.0)
    assert old.due_for_resend(1.0, 3.0) == []
    (resent,) = old.due_for_resend(4.0, 3.0)
    assert resent.dup and resent.packet_id == packet.packet_id
    new = session(5)
    new.publish_packet(Outgoing("t", b"x", 1, False), 0.0)
    assert new.due_for_resend(100.0, 3.0) == []


def test_v5_subscribes_with_no_local_and_reports_refused_filters():
    s = session(5, subscription=(BridgeSubscription("a/#", 1), BridgeSubscription("b/#", 2, retain_handling=1)))
    subscribe = s.subscribe_packet()
    assert all(sub.no_local for sub in subscribe.subscriptions)
    assert subscribe.subscriptions[1].retain_handling == 1
    _, _, _, problem = s.on_packet(SubAck(subscribe.packet_id, [1, 0x87]), 0.0)
    assert problem == "upstream refused subscription b/# (not authorized (0x87))"
    assert session(4, subscription=(BridgeSubscription("a/#", 1),)).subscribe_packet().subscriptions[0].no_local is False


def test_the_upstreams_maximum_qos_and_retain_available_are_respected():
    s = session()
    s.on_connack(ConnAck(0, properties={"maximum_qos": 1, "retain_available": 0}))
    packet = s.publish_packet(Outgoing("t", b"x", 2, True), 0.0)
    assert (packet.qos, packet.retain) == (1, False)


def test_v5_connect_announces_the_local_packet_limit_and_receive_maximum():
    properties = session(5, max_recv_queue_len=50).connect_packet().properties
    assert properties["maximum_packet_size"] == 1 << 20
    assert properties["receive_maximum"] == 50
    assert session(4).connect_packet().properties == {}
