"""MQTT 5 features: wills, properties, topic aliases, expiry, subscription ids, No Local."""

import time

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

V5 = paho.MQTTv5


def _props(packet_type, **values):
    props = Properties(packet_type)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def test_will_is_published_when_the_connection_drops(broker, mqtt):
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", qos=1)
    dying = mqtt(broker.port, "dying")
    dying.connect(will={"topic": "wills/dying", "payload": b"gone", "qos": 1})
    dying.close()  # no DISCONNECT
    message = watcher.expect_message()
    assert (message.topic, message.payload) == ("wills/dying", b"gone")


def test_no_will_after_a_normal_disconnect(broker, mqtt):
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", qos=1)
    polite = mqtt(broker.port, "polite")
    polite.connect(will={"topic": "wills/polite", "payload": b"gone", "qos": 1})
    polite.disconnect()
    assert polite.disconnects.get(timeout=5) == 0
    watcher.expect_no_message()


def test_v5_disconnect_with_will_message_keeps_the_will(broker, mqtt):
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", qos=1)
    leaving = mqtt(broker.port, "leaving", protocol=V5)
    leaving.connect(will={"topic": "wills/leaving", "payload": b"bye", "qos": 1})
    leaving.client.disconnect(reasoncode=paho.ReasonCode(PacketTypes.DISCONNECT, identifier=4))
    assert watcher.expect_message().payload == b"bye"


def test_v5_will_delay_interval_postpones_the_will(broker, mqtt):
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", qos=1)
    delayed = mqtt(broker.port, "delayed", protocol=V5, clean=False)
    will_props = _props(PacketTypes.WILLMESSAGE, WillDelayInterval=1)
    delayed.connect(will={"topic": "wills/delayed", "payload": b"late", "qos": 1, "properties": will_props},
                    properties=_props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    dropped_at = time.monotonic()
    delayed.close()
    assert watcher.expect_message().payload == b"late"
    assert time.monotonic() - dropped_at >= 0.9


def test_v5_properties_travel_with_the_message(broker, mqtt):
    sub = mqtt(broker.port, "sub", protocol=V5)
    sub.connect()
    sub.subscribe("props/t", qos=1)
    pub = mqtt(broker.port, "pub", protocol=V5)
    pub.connect()
    props = _props(PacketTypes.PUBLISH, ContentType="text/plain", ResponseTopic="reply/here",
                   CorrelationData=b"\x01\x02", PayloadFormatIndicator=1,
                   UserProperty=[("k1", "v1"), ("k2", "v2")])
    pub.publish("props/t", b"x", qos=1, properties=props)
    got = sub.expect_message().properties
    assert got.ContentType == "text/plain"
    assert got.ResponseTopic == "reply/here"
    assert got.CorrelationData == b"\x01\x02"
    assert got.PayloadFormatIndicator == 1
    assert got.UserProperty == [("k1", "v1"), ("k2", "v2")]


def test_v5_subscription_identifiers_come_back_on_matching_messages(broker, mqtt):
    sub = mqtt(broker.port, "sub", protocol=V5)
    sub.connect()
    sub.subscribe("sid/#", qos=1, properties=_props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    sub.subscribe("sid/+", qos=1, properties=_props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=9))
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("sid/a", b"x", qos=1)
    assert sorted(sub.expect_message().properties.SubscriptionIdentifier) == [7, 9]


def test_v5_no_local_keeps_own_messages_away(broker, mqtt):
    client = mqtt(broker.port, "self", protocol=V5)
    client.connect()
    client.subscribe("nl/t", options=SubscribeOptions(qos=1, noLocal=True))
    client.publish("nl/t", b"mine", qos=1)
    client.expect_no_message()
    other = mqtt(broker.port, "other")
    other.connect()
    other.publish("nl/t", b"theirs", qos=1)
    assert client.expect_message().payload == b"theirs"


def test_v5_topic_alias_from_the_client_is_resolved(broker, mqtt):
    sub = mqtt(broker.port, "sub")
    sub.connect()
    sub.subscribe("alias/long/topic", qos=1)
    pub = mqtt(broker.port, "pub", protocol=V5)
    pub.connect()
    pub.publish("alias/long/topic", b"first", qos=1, properties=_props(PacketTypes.PUBLISH, TopicAlias=3))
    pub.publish("", b"second", qos=1, properties=_props(PacketTypes.PUBLISH, TopicAlias=3))
    assert [sub.expect_message().topic for _ in range(2)] == ["alias/long/topic"] * 2


def test_v5_topic_alias_to_the_client_within_its_maximum(broker, mqtt):
    from tests.broker.raw import RawClient

    pub = mqtt(broker.port, "pub")
    pub.connect()
    raw = RawClient(broker.port, "aliased", version=5, properties={"topic_alias_maximum": 1})
    raw.subscribe("ta/#", qos=0)
    pub.publish("ta/one", b"1", qos=1)
    pub.publish("ta/one", b"2", qos=1)
    pub.publish("ta/two", b"3", qos=1)
    first, second, third = (raw.expect("Publish") for _ in range(3))
    assert (first.topic, first.properties["topic_alias"]) == ("ta/one", 1)
    assert (second.topic, second.properties["topic_alias"]) == ("", 1)
    assert third.topic == "ta/two" and "topic_alias" not in third.properties


def test_v5_expired_message_is_not_delivered_and_remaining_interval_is_forwarded(broker, mqtt):
    sub = mqtt(broker.port, "later", protocol=V5, clean=False)
    sub.connect(properties=_props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    sub.subscribe("exp/#", qos=1)
    sub.disconnect()
    pub = mqtt(broker.port, "pub", protocol=V5)
    pub.connect()
    pub.publish("exp/short", b"gone", qos=1, properties=_props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    pub.publish("exp/long", b"kept", qos=1, properties=_props(PacketTypes.PUBLISH, MessageExpiryInterval=100))
    time.sleep(1.2)  # let the short one expire while the subscriber is away
    back = mqtt(broker.port, "later", protocol=V5, clean=False)
    back.connect(properties=_props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    message = back.expect_message()
    assert message.payload == b"kept"
    assert 95 <= message.properties.MessageExpiryInterval <= 99
    back.expect_no_message()


def test_v5_maximum_packet_size_of_the_client_is_respected(broker, mqtt):
    sub = mqtt(broker.port, "small", protocol=V5)
    sub.connect(properties=_props(PacketTypes.CONNECT, MaximumPacketSize=128))
    sub.subscribe("mps/t", qos=1)
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("mps/t", b"x" * 500, qos=1)
    pub.publish("mps/t", b"small", qos=1)
    assert sub.expect_message().payload == b"small"


def test_v5_more_user_properties_than_property_size_are_refused(broker_factory, mqtt):
    broker = broker_factory("mqtt { property_size = 2 }\n")
    sub = mqtt(broker.port, "sub")
    sub.connect()
    sub.subscribe("up/t", qos=1)
    pub = mqtt(broker.port, "pub", protocol=V5)
    pub.connect()
    many = _props(PacketTypes.PUBLISH, UserProperty=[("a", "1"), ("b", "2"), ("c", "3")])
    assert pub.publish("up/t", b"refused", qos=1, properties=many) == 0x83
    two = _props(PacketTypes.PUBLISH, UserProperty=[("a", "1"), ("b", "2")])
    assert pub.publish("up/t", b"fine", qos=1, properties=two) == 0
    assert sub.expect_message().payload == b"fine"


def test_v5_will_is_published_when_the_session_ends_before_the_will_delay(broker, mqtt):
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", qos=1)
    short = mqtt(broker.port, "short-session", protocol=V5, clean=False)
    will_props = _props(PacketTypes.WILLMESSAGE, WillDelayInterval=600)
    short.connect(will={"topic": "wills/short", "payload": b"ended", "qos": 1, "properties": will_props},
                  properties=_props(PacketTypes.CONNECT, SessionExpiryInterval=1))
    short.close()
    assert watcher.expect_message().payload == b"ended"


def test_v5_takeover_within_the_will_delay_cancels_the_will(broker, mqtt):
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", qos=1)
    first = mqtt(broker.port, "taken", protocol=V5, clean=False)
    will_props = _props(PacketTypes.WILLMESSAGE, WillDelayInterval=600)
    first.connect(will={"topic": "wills/taken", "payload": b"no", "qos": 1, "properties": will_props},
                  properties=_props(PacketTypes.CONNECT, SessionExpiryInterval=600))
    second = mqtt(broker.port, "taken", protocol=V5, clean=False)
    second.connect(properties=_props(PacketTypes.CONNECT, SessionExpiryInterval=600))
    assert first.disconnects.get(timeout=10) == 0x8E
    second.roundtrip()
    watcher.expect_no_message()
