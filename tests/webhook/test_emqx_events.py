"""EMQX's WebHook events that NanoMQ accepts but never fires: the real broker, real paho
clients, the real HTTP receiver. Each event fires once, with the body the README documents.

Every test runs the stage with `pool_size = 1`: events are POSTed one at a time in the order
accepted, so once a later "fence" event has arrived, every earlier one has too, and a count
proves "exactly once" rather than "at least once so far".
"""

from __future__ import annotations

import json
import time

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from appliance.broker import Broker
from appliance.broker.hooks import BrokerHooks
from appliance.broker.stats import BrokerStats
from appliance.broker.timers import Timers
from appliance.config.model import LimitsConfig, MqttConfig


def webhook_block(url: str, events: str) -> str:
    return f"""
webhook {{
    url = "{url}"
    body.encoding = plain
    pool_size = 1
    events = [ {events} ]
}}
"""


def rules(*pairs) -> str:
    return ", ".join(f'{{ event = "{e}"' + (f', topic = "{t}"' if t else "") + " }" for e, t in pairs)


def posted(receiver, fence) -> list[bytes]:
    """Bodies POSTed up to and including the first one `fence(body)` accepts."""
    receiver.wait_for(lambda r: any(fence(json.loads(x.body)) for x in r.delivered()))
    bodies = []
    for request in receiver.delivered():
        bodies.append(request.body)
        if fence(json.loads(request.body)):
            return bodies
    raise AssertionError("fence vanished")


def is_disconnected(client_id):
    return lambda body: body["action"] == "client_disconnected" and body["clientid"] == client_id


def now_ms() -> int:
    return int(time.time() * 1000)


def test_client_and_session_events_fire_once_each_with_emqx_bodies(broker_factory, mqtt, receiver):
    broker = broker_factory(webhook_block(receiver.url, rules(
        ("on_client_connect", None), ("on_client_connected", None),
        ("on_client_subscribe", "t/#"), ("on_session_subscribed", "t/#"),
        ("on_client_unsubscribe", "t/#"), ("on_session_unsubscribed", "t/#"),
        ("on_session_terminated", None), ("on_client_disconnected", None))))
    client = mqtt(broker.port, "s1")
    client.client.username_pw_set("sam", "pw")
    before = now_ms()
    client.connect()
    client.subscribe("t/#", qos=1)
    client.subscribe("t/#", qos=1)  # again: is_new is false the second time
    client.subscribe("other/topic", qos=0)  # no rule's filter matches: not posted
    client.unsubscribe("t/#")
    client.unsubscribe("other/topic")
    client.disconnect()
    bodies = posted(receiver, is_disconnected("s1"))
    connected_at = json.loads(bodies[1])["connected_at"]
    assert before <= connected_at <= now_ms()
    who = b'"clientid":"s1","username":"sam"'
    assert bodies == [
        b'{"action":"client_connect",' + who + b',"ipaddress":"127.0.0.1","keepalive":60,"proto_ver":4}',
        b'{"action":"client_connected",' + who + b',"ipaddress":"127.0.0.1","keepalive":60,"proto_ver":4,'
        b'"connected_at":%d}' % connected_at,
        b'{"action":"client_subscribe",' + who + b',"topic":"t/#","opts":{"qos":1,"nl":0,"rap":0,"rh":0}}',
        b'{"action":"session_subscribed",' + who + b',"topic":"t/#","opts":{"qos":1,"nl":0,"rap":0,"rh":0,'
        b'"is_new":true}}',
        b'{"action":"client_subscribe",' + who + b',"topic":"t/#","opts":{"qos":1,"nl":0,"rap":0,"rh":0}}',
        b'{"action":"session_subscribed",' + who + b',"topic":"t/#","opts":{"qos":1,"nl":0,"rap":0,"rh":0,'
        b'"is_new":false}}',
        b'{"action":"client_unsubscribe",' + who + b',"topic":"t/#","opts":{}}',
        b'{"action":"session_unsubscribed",' + who + b',"topic":"t/#"}',
        b'{"action":"session_terminated",' + who + b',"reason":"normal"}',
        b'{"reason":"normal","username":"sam","clientid":"s1","action":"client_disconnected"}',
    ]


def test_v5_subscription_options_are_in_opts(broker_factory, mqtt, receiver):
    broker = broker_factory(webhook_block(receiver.url, rules(("on_session_subscribed", None),
                                                              ("on_client_disconnected", None))))
    client = mqtt(broker.port, "v5sub", protocol=paho.MQTTv5)
    client.connect()
    client.subscribe("o/#", options=SubscribeOptions(qos=2, noLocal=True, retainAsPublished=True,
                                                     retainHandling=2))
    client.disconnect()
    first, fence = posted(receiver, is_disconnected("v5sub"))
    assert json.loads(first) == {"action": "session_subscribed", "clientid": "v5sub", "username": "undefined",
                                 "topic": "o/#", "opts": {"qos": 2, "nl": 1, "rap": 1, "rh": 2, "is_new": True}}


def test_message_delivered_acked_and_dropped_fire_once_with_emqx_bodies(broker_factory, mqtt, receiver):
    broker = broker_factory(webhook_block(receiver.url, rules(
        ("on_message_delivered", "m/#"), ("on_message_acked", "m/#"), ("on_message_dropped", "m/#"),
        ("on_client_disconnected", None))))
    subscriber = mqtt(broker.port, "sub")
    subscriber.client.username_pw_set("sue", "pw")
    subscriber.connect()
    subscriber.subscribe("m/+", qos=2)
    publisher = mqtt(broker.port, "pub")
    publisher.client.username_pw_set("pat", "pw")
    publisher.connect()
    publisher.publish("m/one", b"first", qos=1)
    assert subscriber.expect_message().payload == b"first"
    # paho acknowledges after its on_message: wait for the ack's event before going on
    receiver.wait_for(lambda r: any(b'"message_acked"' in x.body and b"m/one" in x.body for x in r.delivered()))
    publisher.publish("m/two", b"second", qos=2)
    assert subscriber.expect_message().payload == b"second"
    receiver.wait_for(lambda r: any(b'"message_acked"' in x.body and b"m/two" in x.body for x in r.delivered()))
    publisher.publish("m/nobody/here", b"lost", qos=1)  # m/+ does not match: no subscriber
    publisher.publish("elsewhere", b"lost too", qos=1)  # no subscriber, but no rule's topic either
    publisher.disconnect()
    bodies = posted(receiver, is_disconnected("pub"))
    ts = [json.loads(b).get("ts") for b in bodies]
    sub, pub = b'"clientid":"sub","username":"sue"', b'"from_client_id":"pub","from_username":"pat"'
    one = pub + b',"topic":"m/one","qos":1,"retain":false,"payload":"first","ts":%d' % ts[0]
    two = pub + b',"topic":"m/two","qos":2,"retain":false,"payload":"second","ts":%d' % ts[2]
    lost = pub + b',"topic":"m/nobody/here","qos":1,"retain":false,"payload":"lost","ts":%d' % ts[4]
    assert bodies == [
        b'{"action":"message_delivered",' + sub + b',' + one + b'}',
        b'{"action":"message_acked",' + sub + b',' + one + b'}',  # at PUBACK
        b'{"action":"message_delivered",' + sub + b',' + two + b'}',
        b'{"action":"message_acked",' + sub + b',' + two + b'}',  # at PUBCOMP
        b'{"action":"message_dropped",' + lost + b',"reason":"no_subscribers"}',
        b'{"reason":"normal","username":"pat","clientid":"pub","action":"client_disconnected"}',
    ]
    assert all(abs(t - now_ms()) < 60_000 for t in ts[:5])


def test_delivered_carries_the_granted_qos_and_the_retained_flag(broker_factory, mqtt, receiver):
    broker = broker_factory(webhook_block(receiver.url, rules(("on_message_delivered", None),
                                                              ("on_client_disconnected", None))))
    publisher = mqtt(broker.port, "keeper")
    publisher.connect()
    publisher.publish("r/kept", b"state", qos=1, retain=True)
    subscriber = mqtt(broker.port, "late")
    subscriber.connect()
    subscriber.subscribe("r/#", qos=0)  # the retained message comes at QoS 0
    assert subscriber.expect_message().retain
    subscriber.disconnect()
    delivered, fence = posted(receiver, is_disconnected("late"))
    body = json.loads(delivered)
    assert (body["clientid"], body["from_client_id"], body["topic"], body["qos"], body["retain"]) == \
        ("late", "keeper", "r/kept", 0, True)


def test_session_terminated_says_expired_for_a_session_that_outlives_its_expiry(broker_factory, mqtt, receiver):
    broker = broker_factory(webhook_block(receiver.url, rules(("on_session_terminated", None))))
    client = mqtt(broker.port, "brief", protocol=paho.MQTTv5, clean=False)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 1
    client.connect(properties=properties)
    client.disconnect()  # the session stays for a second, then ends
    (body,) = [json.loads(r.body) for r in receiver.wait_delivered(1)]
    assert body == {"action": "session_terminated", "clientid": "brief", "username": "undefined",
                    "reason": "expired"}


def test_an_unnamed_event_costs_nothing_the_broker_does_not_even_look_it_up():
    """The per-message hot path: with no hook wanting delivered/acked/dropped, the broker's
    callables are None, and a PUBLISH's delivery checks only that."""

    class PublishOnly(BrokerHooks):
        def on_message_publish(self, client, message):
            pass

    class Delivered(BrokerHooks):
        def __init__(self):
            self.calls = []

        def on_message_delivered(self, client, message, qos, retain):
            self.calls.append((client, message.topic, qos, retain))

    broker = Broker(MqttConfig(), LimitsConfig(), BrokerStats(), Timers())
    broker.add_hooks(PublishOnly())
    assert (broker.on_delivered, broker.on_acked) == (None, None)
    wanting = Delivered()
    broker.add_hooks(wanting)
    assert broker.on_delivered is not None and broker.on_acked is None
    broker.on_delivered("info", type("M", (), {"topic": "a"})(), 1, False)
    assert wanting.calls == [("info", "a", 1, False)]


def test_session_terminated_says_discarded_when_a_clean_start_replaces_a_kept_session(broker_factory, mqtt,
                                                                                       receiver):
    broker = broker_factory(webhook_block(receiver.url, rules(("on_session_terminated", None),
                                                              ("on_client_disconnected", None))))
    kept = mqtt(broker.port, "again", clean=False)
    kept.connect()
    kept.disconnect()  # the session stays (3.1.1, clean session 0)
    fresh = mqtt(broker.port, "again", clean=True)
    fresh.connect()
    fresh.disconnect()  # clean session: it ends with this connection
    bodies = [json.loads(r.body) for r in receiver.wait_delivered(4)]
    assert [(b["action"], b["reason"]) for b in bodies] == [
        ("client_disconnected", "normal"), ("session_terminated", "discarded"),
        ("session_terminated", "normal"), ("client_disconnected", "normal")]
