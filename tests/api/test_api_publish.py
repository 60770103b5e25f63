"""POST /api/v4/mqtt/publish and publish_batch: delivered through the broker's routing to
real subscribers, with QoS, retain and MQTT 5 properties; wrong bodies refused."""

import base64

import paho.mqtt.client as paho
import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

PUBLISH = "/api/v4/mqtt/publish"


def test_publish_reaches_a_subscriber(api, connect):
    subscriber = connect("sub")
    subscriber.subscribe("a/b", qos=1)
    assert api.ok("POST", PUBLISH, {"topic": "a/b", "payload": "Hello World", "qos": 1,
                                    "clientid": "example"}) == {"code": 0}
    message = subscriber.expect_message()
    assert (message.topic, message.payload, message.qos, message.retain) == ("a/b", b"Hello World", 1, False)


def test_qos_is_the_lower_of_the_message_and_the_subscription(api, connect):
    subscriber = connect("sub")
    subscriber.subscribe("q", qos=2)
    api.ok("POST", PUBLISH, {"topic": "q", "payload": "x", "qos": 2})
    assert subscriber.expect_message().qos == 2
    api.ok("POST", PUBLISH, {"topic": "q", "payload": "y"})  # qos defaults to 0
    assert subscriber.expect_message().qos == 0


def test_retained_message_reaches_a_later_subscriber(api, connect):
    api.ok("POST", PUBLISH, {"topic": "state/door", "payload": "open", "retain": True, "qos": 1})
    late = connect("late")
    late.subscribe("state/#", qos=1)
    message = late.expect_message()
    assert (message.topic, message.payload, message.retain) == ("state/door", b"open", True)


def test_topics_publishes_to_each_topic(api, connect):
    subscriber = connect("sub")
    subscriber.subscribe("t/#")
    api.ok("POST", PUBLISH, {"topics": "t/1,t/2,t/3", "payload": "x"})
    assert sorted(subscriber.expect_message().topic for _ in range(3)) == ["t/1", "t/2", "t/3"]


def test_base64_payload_is_decoded(api, connect):
    subscriber = connect("sub")
    subscriber.subscribe("bin")
    raw = bytes(range(256))
    api.ok("POST", PUBLISH, {"topic": "bin", "payload": base64.b64encode(raw).decode(), "encoding": "base64"})
    assert subscriber.expect_message().payload == raw


def test_properties_reach_a_v5_subscriber(api, connect):
    subscriber = connect("v5", protocol=paho.MQTTv5)
    subscriber.subscribe("p")
    api.ok("POST", PUBLISH, {"topic": "p", "payload": "x", "properties": {
        "user_properties": {"id": 10010, "name": "nanomq", "ok": True},
        "content_type": "text/plain", "response_topic": "reply/here", "correlation_data": "c-1",
        "payload_format_indicator": 1, "message_expiry_interval": 60}})
    props = subscriber.expect_message().properties
    assert sorted(props.UserProperty) == [("id", "10010"), ("name", "nanomq"), ("ok", "true")]
    assert props.ContentType == "text/plain"
    assert props.ResponseTopic == "reply/here"
    assert props.CorrelationData == b"c-1"
    assert props.PayloadFormatIndicator == 1
    assert 0 < props.MessageExpiryInterval <= 60


def test_publish_without_subscribers_still_succeeds(api):
    assert api.ok("POST", PUBLISH, {"topic": "nobody/listens", "payload": "x"}) == {"code": 0}


def test_no_local_subscriber_with_the_same_client_id_does_not_get_it(api, connect):
    me = connect("me", protocol=paho.MQTTv5)
    me.subscribe("loop", options=SubscribeOptions(qos=0, noLocal=True))
    api.ok("POST", PUBLISH, {"topic": "loop", "payload": "x", "clientid": "me"})
    api.ok("POST", PUBLISH, {"topic": "loop", "payload": "y", "clientid": "someone-else"})
    assert me.expect_message().payload == b"y"


@pytest.mark.parametrize("body, code, status", [
    ({"payload": "x"}, 107, 400),  # no topic
    ({"topic": "t"}, 107, 400),  # no payload
    ({"topic": "a/#", "payload": "x"}, 108, 400),
    ({"topic": "a/+/b", "payload": "x"}, 108, 400),
    ({"topic": "", "payload": "x"}, 108, 400),
    ({"topics": "ok,a/#", "payload": "x"}, 108, 400),
    ({"topic": "t", "payload": "x", "qos": 3}, 108, 400),
    ({"topic": "t", "payload": "x", "qos": "1"}, 108, 400),
    ({"topic": "t", "payload": "x", "qos": True}, 108, 400),
    ({"topic": "t", "payload": "x", "retain": "yes"}, 108, 400),
    ({"topic": "t", "payload": 5}, 108, 400),
    ({"topic": "t", "payload": "%%%", "encoding": "base64"}, 108, 400),
    ({"topic": "t", "payload": "x", "encoding": "hex"}, 108, 400),
    ({"topic": "t", "payload": "x", "clientid": 7}, 108, 400),
    ({"topic": "t", "payload": "x", "colour": "red"}, 108, 400),
    ({"topic": "t", "payload": "x", "properties": []}, 108, 400),
    ({"topic": "t", "payload": "x", "properties": {"topic_alias": 1}}, 108, 400),
    ({"topic": "t", "payload": "x", "properties": {"message_expiry_interval": -1}}, 108, 400),
    ({"topic": "t", "payload": "x", "properties": {"response_topic": "r/#"}}, 108, 400),
    ({"topic": "t", "payload": "x", "properties": {"user_properties": {"k": [1]}}}, 108, 400),
    ({"topic": "t", "payload": base64.b64encode(b"\xff").decode(), "encoding": "base64",
      "properties": {"payload_format_indicator": 1}}, 108, 400),
    ({"topic": "t/\ud800", "payload": "x"}, 108, 400),  # a lone surrogate is not UTF-8
    ({"topic": "t", "payload": "x" * (1024 * 1024 + 1)}, 108, 413),  # over mqtt.max_packet_size
])
def test_wrong_publish_requests_are_refused_and_publish_nothing(api, connect, body, code, status):
    watcher = connect("watcher")
    watcher.subscribe("#")
    reply = api.post(PUBLISH, body)
    assert (reply.status, reply.json["code"]) == (status, code), reply.body
    assert reply.json["message"]
    watcher.expect_no_message()


def test_topic_over_the_limits_is_refused(broker_factory, api_for):
    broker = broker_factory("limits { max_topic_levels = 3 }\n")
    reply = api_for(broker).post(PUBLISH, {"topic": "a/b/c/d", "payload": "x"})
    assert (reply.status, reply.json["code"]) == (400, 108)


# -- publish_batch -------------------------------------------------------------------

def test_batch_publishes_each_and_reports_each(api, connect):
    subscriber = connect("sub")
    subscriber.subscribe("b/#", qos=1)
    document = api.ok("POST", "/api/v4/mqtt/publish_batch", [
        {"topic": "b/1", "payload": "one", "qos": 1},
        {"topic": "b/#", "payload": "bad topic"},
        {"topics": "b/2,b/3", "payload": "two and three"},
        "not an object",
    ])
    assert [(item["topic"], item["code"]) for item in document["data"]] == [
        ("b/1", 0), ("b/#", 108), ("b/2,b/3", 0), ("", 108)]
    assert document["data"][1]["message"]
    got = sorted((m.topic, m.payload) for m in (subscriber.expect_message() for _ in range(3)))
    assert got == [("b/1", b"one"), ("b/2", b"two and three"), ("b/3", b"two and three")]
    subscriber.expect_no_message()


def test_batch_must_be_an_array_and_is_bounded(api):
    not_array = api.post("/api/v4/mqtt/publish_batch", {"topic": "t", "payload": "x"})
    assert (not_array.status, not_array.json["code"]) == (400, 108)
    too_many = api.post("/api/v4/mqtt/publish_batch", [{"topic": "t", "payload": ""}] * 1001)
    assert (too_many.status, too_many.json["code"]) == (400, 108)
    broken = api.post("/api/v4/mqtt/publish_batch", raw=b"[{")
    assert (broken.status, broken.json["code"]) == (400, 109)
