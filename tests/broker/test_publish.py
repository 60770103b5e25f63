"""PUBLISH at QoS 0, 1 and 2 both ways: handshakes, windows, queues and resends."""

import paho.mqtt.client as paho
import pytest

from appliance.mqtt.packets import PubAck
from tests.broker.raw import RawClient


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_message_arrives_at_the_qos_of_the_subscription_and_publish(broker, mqtt, qos):
    sub = mqtt(broker.port, "sub")
    sub.connect()
    sub.subscribe("q/t", qos=2)
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("q/t", f"m{qos}", qos=qos)
    message = sub.expect_message()
    assert (message.payload, message.qos) == (f"m{qos}".encode(), qos)


def test_qos_is_downgraded_to_the_subscription_maximum(broker, mqtt):
    sub = mqtt(broker.port, "sub")
    sub.connect()
    assert sub.subscribe("d/t", qos=0) == [0]
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("d/t", b"x", qos=2)
    assert sub.expect_message().qos == 0


def test_inflight_window_holds_back_messages_until_acknowledged(broker_factory, mqtt):
    broker = broker_factory("mqtt { max_inflight_window = 2 }\n")
    sub = mqtt(broker.port, "slow", manual_ack=True)
    sub.connect()
    sub.subscribe("w/t", qos=1)
    pub = mqtt(broker.port, "pub")
    pub.connect()
    for i in range(5):
        pub.publish("w/t", str(i), qos=1)
    first, second = sub.expect_message(), sub.expect_message()
    assert [first.payload, second.payload] == [b"0", b"1"]
    sub.expect_no_message()  # the window is full
    sub.client.ack(first.mid, 1)
    assert sub.expect_message().payload == b"2"
    sub.client.ack(second.mid, 1)
    assert sub.expect_message().payload == b"3"


def test_unacknowledged_message_is_resent_with_dup_on_reconnect(broker, mqtt):
    sub = mqtt(broker.port, "persist", clean=False, manual_ack=True)
    sub.connect()
    sub.subscribe("r/t", qos=1)
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("r/t", b"again", qos=1)
    assert sub.expect_message().payload == b"again"
    sub.close()  # gone without acknowledging
    back = mqtt(broker.port, "persist", clean=False)
    flags, _, _ = back.connect()
    assert flags.session_present
    message = back.expect_message()
    assert (message.payload, message.dup) == (b"again", True)


def test_v311_unacknowledged_message_is_resent_after_retry_interval(broker_factory, mqtt):
    broker = broker_factory("mqtt { retry_interval = 1s }\n")
    sub = mqtt(broker.port, "forgetful", manual_ack=True)
    sub.connect()
    sub.subscribe("retry/t", qos=1)
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("retry/t", b"once", qos=1)
    first = sub.expect_message()
    again = sub.expect_message()
    assert (first.dup, again.dup, again.payload) == (False, True, b"once")


def test_offline_persistent_session_queues_up_to_max_mqueue_len_dropping_oldest(broker_factory, mqtt):
    broker = broker_factory("mqtt { max_mqueue_len = 3 }\n")
    sub = mqtt(broker.port, "offline", clean=False)
    sub.connect()
    sub.subscribe("o/t", qos=1)
    sub.disconnect()
    pub = mqtt(broker.port, "pub")
    pub.connect()
    for i in range(5):
        pub.publish("o/t", str(i), qos=1)
    back = mqtt(broker.port, "offline", clean=False)
    back.connect()
    assert [back.expect_message().payload for _ in range(3)] == [b"2", b"3", b"4"]
    back.expect_no_message()


def test_qos2_publish_is_routed_once_even_when_resent_before_pubrel(broker, mqtt):
    """The broker keeps the packet id until PUBREL: a DUP resend is not routed again."""
    sub = mqtt(broker.port, "sub")
    sub.connect()
    sub.subscribe("dup/t", qos=2)
    raw = RawClient(broker.port, "rawpub")
    raw.publish("dup/t", b"once", qos=2, packet_id=7)
    assert raw.expect("PubRec").packet_id == 7
    raw.publish("dup/t", b"once", qos=2, packet_id=7, dup=True)
    assert raw.expect("PubRec").packet_id == 7
    raw.send_pubrel(7)
    assert raw.expect("PubComp").packet_id == 7
    assert sub.expect_message().payload == b"once"
    raw.roundtrip()
    sub.expect_no_message()


def test_v5_puback_says_no_matching_subscribers(broker, mqtt):
    pub = mqtt(broker.port, "pub5", protocol=paho.MQTTv5)
    pub.connect()
    assert pub.publish("nobody/listens", b"x", qos=1) == 0x10


def test_v5_receive_maximum_of_the_client_limits_messages_in_flight(broker, mqtt):
    raw = RawClient(broker.port, "one-at-a-time", version=5, properties={"receive_maximum": 1})
    raw.subscribe("rm/t", qos=1)
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("rm/t", b"1", qos=1)
    pub.publish("rm/t", b"2", qos=1)
    first = raw.expect("Publish")
    raw.roundtrip()  # the PINGRESP comes back; the second message must not have
    raw.send(PubAck(first.packet_id))
    assert raw.expect("Publish").payload == b"2"
