"""PUBLISH at QoS 0, 1 and 2 both ways: handshakes, windows, queues and resends (in-process)."""

import pytest

from appliance.config.model import MqttConfig
from appliance.mqtt.packets import PubAck, PubRel


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_message_arrives_at_the_qos_of_the_subscription_and_publish(hub, qos):
    sub = hub.peer("sub")
    sub.subscribe("q/t", qos=2)
    pub = hub.peer("pub")
    pub.publish("q/t", f"m{qos}", qos=qos)
    message = sub.expect_message()
    assert (message.payload, message.qos) == (f"m{qos}".encode(), qos)


def test_qos_is_downgraded_to_the_subscription_maximum(hub):
    sub = hub.peer("sub")
    assert sub.subscribe("d/t", qos=0) == [0]
    hub.peer("pub").publish("d/t", b"x", qos=2)
    assert sub.expect_message().qos == 0


def test_inflight_window_holds_back_messages_until_acknowledged(hub_factory):
    hub = hub_factory(MqttConfig(max_inflight_window=2))
    sub = hub.peer("slow")
    sub.subscribe("w/t", qos=1)
    pub = hub.peer("pub")
    for i in range(5):
        pub.publish("w/t", str(i), qos=1)
    first, second = sub.messages(ack=False)
    assert [first.payload, second.payload] == [b"0", b"1"]
    sub.expect_no_message()  # the window is full
    sub.send(PubAck(first.packet_id))
    third = sub.expect_message(ack=False)
    assert third.payload == b"2"
    sub.send(PubAck(second.packet_id))
    assert sub.expect_message(ack=False).payload == b"3"


def test_unacknowledged_message_is_resent_with_dup_on_reconnect(hub):
    sub = hub.peer("persist", clean=False)
    sub.subscribe("r/t", qos=1)
    hub.peer("pub").publish("r/t", b"again", qos=1)
    assert sub.expect_message(ack=False).payload == b"again"
    sub.drop()  # gone without acknowledging
    back = hub.peer("persist", connect=False)
    assert back.connect(clean=False).session_present
    message = back.expect_message()
    assert (message.payload, message.dup) == (b"again", True)


def test_v311_unacknowledged_message_is_resent_after_retry_interval(hub_factory):
    hub = hub_factory(MqttConfig(retry_interval=1.0))
    sub = hub.peer("forgetful")
    sub.subscribe("retry/t", qos=1)
    hub.peer("pub").publish("retry/t", b"once", qos=1)
    first = sub.expect_message(ack=False)
    hub.run_timers(after=0.5)
    sub.expect_no_message()
    hub.run_timers(after=1.1)
    again = sub.expect_message(ack=False)
    assert (first.dup, again.dup, again.payload) == (False, True, b"once")


def test_v5_unacknowledged_message_is_not_resent_on_a_live_connection(hub_factory):
    hub = hub_factory(MqttConfig(retry_interval=1.0))
    sub = hub.peer("v5", version=5)
    sub.subscribe("retry/t", qos=1)
    hub.peer("pub").publish("retry/t", b"once", qos=1)
    sub.expect_message(ack=False)
    hub.run_timers(after=2.1)
    hub.run_timers(after=3.2)
    sub.expect_no_message()


def test_offline_persistent_session_queues_up_to_max_mqueue_len_dropping_oldest(hub_factory):
    hub = hub_factory(MqttConfig(max_mqueue_len=3))
    sub = hub.peer("offline", clean=False)
    sub.subscribe("o/t", qos=1)
    sub.disconnect()
    pub = hub.peer("pub")
    for i in range(5):
        pub.publish("o/t", str(i), qos=1)
    back = hub.peer("offline", clean=False)
    assert [m.payload for m in back.messages()] == [b"2", b"3", b"4"]
    back.expect_no_message()
    assert hub.stats.messages_dropped["queue_full"] == 2


def test_qos2_publish_is_routed_once_even_when_resent_before_pubrel(hub):
    """The broker keeps the packet id until PUBREL: a DUP resend is not routed again."""
    sub = hub.peer("sub")
    sub.subscribe("dup/t", qos=2)
    raw = hub.peer("rawpub")
    raw.publish("dup/t", b"once", qos=2, packet_id=7)
    assert raw.expect("PubRec").packet_id == 7
    raw.publish("dup/t", b"once", qos=2, packet_id=7, dup=True)
    assert raw.expect("PubRec").packet_id == 7
    raw.send(PubRel(7))
    assert raw.expect("PubComp").packet_id == 7
    assert sub.expect_message().payload == b"once"
    raw.roundtrip()
    sub.expect_no_message()


def test_v5_puback_says_no_matching_subscribers(hub):
    assert hub.peer("pub5", version=5).publish("nobody/listens", b"x", qos=1) == 0x10


def test_v5_receive_maximum_of_the_client_limits_messages_in_flight(hub):
    raw = hub.peer("one-at-a-time", version=5, properties={"receive_maximum": 1})
    raw.subscribe("rm/t", qos=1)
    pub = hub.peer("pub")
    pub.publish("rm/t", b"1", qos=1)
    pub.publish("rm/t", b"2", qos=1)
    first = raw.expect_message(ack=False)
    raw.roundtrip()  # the PINGRESP comes back; the second message must not have
    assert raw.received == []
    raw.send(PubAck(first.packet_id))
    assert raw.expect_message().payload == b"2"
