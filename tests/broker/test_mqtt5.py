"""MQTT 5 features and wills: properties, topic aliases, expiry, subscription ids, No Local (in-process)."""

import time

from appliance.config.model import MqttConfig
from appliance.mqtt.packets import Will

V5 = 5


def _watcher(hub):
    watcher = hub.peer("watcher")
    watcher.subscribe("wills/#", qos=1)
    return watcher


def test_will_is_published_when_the_connection_drops(hub):
    watcher = _watcher(hub)
    dying = hub.peer("dying", will=Will("wills/dying", b"gone", 1))
    dying.drop()  # no DISCONNECT
    message = watcher.expect_message()
    assert (message.topic, message.payload) == ("wills/dying", b"gone")


def test_no_will_after_a_normal_disconnect(hub):
    watcher = _watcher(hub)
    polite = hub.peer("polite", will=Will("wills/polite", b"gone", 1))
    polite.disconnect()
    assert ("polite", "normal") in hub.events.disconnects
    watcher.expect_no_message()


def test_v5_disconnect_with_will_message_keeps_the_will(hub):
    watcher = _watcher(hub)
    leaving = hub.peer("leaving", version=V5, will=Will("wills/leaving", b"bye", 1))
    leaving.disconnect(reason_code=4)
    assert watcher.expect_message().payload == b"bye"


def test_v5_will_delay_interval_postpones_the_will(hub):
    watcher = _watcher(hub)
    delayed = hub.peer("delayed", version=V5, clean=False,
                       will=Will("wills/delayed", b"late", 1, properties={"will_delay_interval": 1}),
                       properties={"session_expiry_interval": 60})
    delayed.drop()
    hub.run_timers(after=0.9)
    watcher.expect_no_message()
    hub.run_timers(after=1.0)
    assert watcher.expect_message().payload == b"late"


def test_v5_properties_travel_with_the_message(hub):
    sub = hub.peer("sub", version=V5)
    sub.subscribe("props/t", qos=1)
    pub = hub.peer("pub", version=V5)
    props = {"content_type": "text/plain", "response_topic": "reply/here", "correlation_data": b"\x01\x02",
             "payload_format_indicator": 1, "user_property": [("k1", "v1"), ("k2", "v2")]}
    pub.publish("props/t", b"x", qos=1, properties=props)
    got = sub.expect_message().properties
    assert got["content_type"] == "text/plain"
    assert got["response_topic"] == "reply/here"
    assert got["correlation_data"] == b"\x01\x02"
    assert got["payload_format_indicator"] == 1
    assert got["user_property"] == [("k1", "v1"), ("k2", "v2")]


def test_v5_subscription_identifiers_come_back_on_matching_messages(hub):
    sub = hub.peer("sub", version=V5)
    sub.subscribe("sid/#", qos=1, properties={"subscription_identifier": [7]})
    sub.subscribe("sid/+", qos=1, properties={"subscription_identifier": [9]})
    hub.peer("pub").publish("sid/a", b"x", qos=1)
    assert sorted(sub.expect_message().properties["subscription_identifier"]) == [7, 9]


def test_v5_no_local_keeps_own_messages_away(hub):
    client = hub.peer("self", version=V5)
    client.subscribe("nl/t", qos=1, no_local=True)
    client.publish("nl/t", b"mine", qos=1)
    client.expect_no_message()
    hub.peer("other").publish("nl/t", b"theirs", qos=1)
    assert client.expect_message().payload == b"theirs"


def test_v5_topic_alias_from_the_client_is_resolved(hub):
    sub = hub.peer("sub")
    sub.subscribe("alias/long/topic", qos=1)
    pub = hub.peer("pub", version=V5)
    pub.publish("alias/long/topic", b"first", qos=1, properties={"topic_alias": 3})
    pub.publish("", b"second", qos=1, properties={"topic_alias": 3})
    assert [m.topic for m in sub.messages()] == ["alias/long/topic"] * 2


def test_v5_topic_alias_to_the_client_within_its_maximum(hub):
    pub = hub.peer("pub")
    raw = hub.peer("aliased", version=V5, properties={"topic_alias_maximum": 1})
    raw.subscribe("ta/#", qos=0)
    pub.publish("ta/one", b"1", qos=1)
    pub.publish("ta/one", b"2", qos=1)
    pub.publish("ta/two", b"3", qos=1)
    first, second, third = raw.messages()
    assert (first.topic, first.properties["topic_alias"]) == ("ta/one", 1)
    assert (second.topic, second.properties["topic_alias"]) == ("", 1)
    assert third.topic == "ta/two" and "topic_alias" not in third.properties


def test_v5_expired_message_is_not_delivered_and_remaining_interval_is_forwarded(hub):
    sub = hub.peer("later", version=V5, clean=False, properties={"session_expiry_interval": 60})
    sub.subscribe("exp/#", qos=1)
    sub.disconnect()
    pub = hub.peer("pub", version=V5)
    pub.publish("exp/short", b"gone", qos=1, properties={"message_expiry_interval": 1})
    pub.publish("exp/long", b"kept", qos=1, properties={"message_expiry_interval": 100})
    time.sleep(1.05)  # the message's clock is time.monotonic(): let the short one expire
    back = hub.peer("later", version=V5, clean=False, properties={"session_expiry_interval": 60})
    message = back.expect_message()
    assert message.payload == b"kept"
    assert 95 <= message.properties["message_expiry_interval"] <= 99
    back.expect_no_message()
    assert hub.stats.messages_dropped["expired"] == 1


def test_v5_maximum_packet_size_of_the_client_is_respected(hub):
    sub = hub.peer("small", version=V5, properties={"maximum_packet_size": 128})
    sub.subscribe("mps/t", qos=1)
    pub = hub.peer("pub")
    pub.publish("mps/t", b"x" * 500, qos=1)
    pub.publish("mps/t", b"small", qos=1)
    assert sub.expect_message().payload == b"small"
    assert hub.stats.messages_dropped["too_large"] == 1


def test_v5_more_user_properties_than_property_size_are_refused(hub_factory):
    hub = hub_factory(MqttConfig(property_size=2))
    sub = hub.peer("sub")
    sub.subscribe("up/t", qos=1)
    pub = hub.peer("pub", version=V5)
    many = {"user_property": [("a", "1"), ("b", "2"), ("c", "3")]}
    assert pub.publish("up/t", b"refused", qos=1, properties=many) == 0x83
    two = {"user_property": [("a", "1"), ("b", "2")]}
    assert pub.publish("up/t", b"fine", qos=1, properties=two) == 0
    assert sub.expect_message().payload == b"fine"


def test_v5_will_is_published_when_the_session_ends_before_the_will_delay(hub):
    watcher = _watcher(hub)
    short = hub.peer("short-session", version=V5, clean=False,
                     will=Will("wills/short", b"ended", 1, properties={"will_delay_interval": 600}),
                     properties={"session_expiry_interval": 1})
    short.drop()
    watcher.expect_no_message()
    hub.run_timers(after=1.0)
    assert watcher.expect_message().payload == b"ended"
    assert "short-session" not in hub.broker.sessions


def test_v5_takeover_within_the_will_delay_cancels_the_will(hub):
    watcher = _watcher(hub)
    first = hub.peer("taken", version=V5, clean=False,
                     will=Will("wills/taken", b"no", 1, properties={"will_delay_interval": 600}),
                     properties={"session_expiry_interval": 600})
    hub.peer("taken", version=V5, clean=False, properties={"session_expiry_interval": 600})
    assert first.expect("Disconnect").reason_code == 0x8E
    hub.run_timers(after=601)
    watcher.expect_no_message()


def test_takeover_publishes_a_will_without_delay_of_the_old_connection(hub):
    watcher = _watcher(hub)
    hub.peer("taken", will=Will("wills/taken", b"now", 1))
    hub.peer("taken")
    assert watcher.expect_message().payload == b"now"


def test_delayed_wills_are_published_at_shutdown(hub):
    watcher = _watcher(hub)
    offline = hub.peer("offline", version=V5, clean=False,
                       will=Will("wills/offline", b"delayed", 1, properties={"will_delay_interval": 600}),
                       properties={"session_expiry_interval": 600})
    offline.drop()
    online = hub.peer("online", version=V5, clean=False,
                      will=Will("wills/online", b"connected", 1, properties={"will_delay_interval": 600}),
                      properties={"session_expiry_interval": 600})
    watcher.expect_no_message()
    hub.shut_down([watcher, online])
    assert sorted(m.payload for m in watcher.messages()) == [b"connected", b"delayed"]
    assert online.expect("Disconnect").reason_code == 0x8B
