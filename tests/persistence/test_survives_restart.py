"""What persistence keeps across a crash (kill -9) and a restart (SIGTERM), against the real
broker process on the same store directory, with paho and raw-socket clients."""

from __future__ import annotations

import signal
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from appliance.mqtt.packets import Publish, PubRec, Unsubscribe

from tests.conftest import TIMEOUT
from tests.persistence.raw import RawClient

V5 = paho.MQTTv5


@pytest.fixture(params=["kill", "sigterm"])
def restart(request, broker_factory, tmp_path):
    """`start()` the broker with persistence in tmp_path/data; `restart(broker)` ends it the
    parametrised way (kill -9 or SIGTERM, `end(broker)`) and starts a new one on the same
    directory."""
    config = f'persistence {{ dir = "{tmp_path / "data"}" }}\n'

    class Restarter:
        @staticmethod
        def start(extra: str = ""):
            Restarter.extra = extra
            return broker_factory(config + extra)

        @staticmethod
        def end(broker) -> None:
            """End the broker the parametrised way."""
            if request.param == "kill":
                broker.kill()
            else:
                assert broker.stop(signal.SIGTERM) == 0

        @staticmethod
        def __call__(broker):
            Restarter.end(broker)
            return broker_factory(config + Restarter.extra)

        @staticmethod
        def again():
            """Start again after the test ended the broker itself."""
            return broker_factory(config + Restarter.extra)

    return Restarter()


def props(**values) -> Properties:
    p = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def connect_props(expiry: int) -> Properties:
    p = Properties(PacketTypes.CONNECT)
    p.SessionExpiryInterval = expiry
    return p


def test_retained_messages_set_replaced_cleared_with_properties(restart, mqtt):
    broker = restart.start()
    pub = mqtt(broker.port, "pub", protocol=V5)
    pub.connect()
    pub.publish("r/kept", b"one", qos=1, retain=True,
                properties=props(ContentType="text/plain", UserProperty=[("k", "v")], CorrelationData=b"\x00\x01",
                                 MessageExpiryInterval=600))
    pub.publish("r/replaced", b"old", qos=1, retain=True)
    pub.publish("r/replaced", b"new", qos=1, retain=True)
    pub.publish("r/cleared", b"gone", qos=1, retain=True)
    pub.publish("r/cleared", b"", qos=1, retain=True)
    pub.close()  # the PUBACKs came: all of it is durable now

    broker = restart(broker)
    sub = mqtt(broker.port, "sub", protocol=V5)
    sub.connect()
    sub.subscribe("r/#", qos=1)
    got = {}
    for _ in range(2):
        message = sub.expect_message()
        got[message.topic] = message
    sub.expect_no_message()
    assert set(got) == {"r/kept", "r/replaced"}
    assert got["r/replaced"].payload == b"new"
    kept = got["r/kept"]
    assert kept.payload == b"one" and kept.retain
    assert kept.properties.ContentType == "text/plain"
    assert kept.properties.UserProperty == [("k", "v")]
    assert kept.properties.CorrelationData == b"\x00\x01"
    assert 0 < kept.properties.MessageExpiryInterval <= 600


def test_message_expiry_keeps_counting_while_down(restart, mqtt):
    broker = restart.start()
    pub = mqtt(broker.port, "pub", protocol=V5)
    pub.connect()
    pub.publish("e/short", b"x", qos=1, retain=True, properties=props(MessageExpiryInterval=2))
    pub.publish("e/long", b"y", qos=1, retain=True, properties=props(MessageExpiryInterval=60))
    published = time.monotonic()
    pub.close()
    restart.end(broker)
    time.sleep(max(0.0, published + 3 - time.monotonic()))  # the downtime itself is the point
    broker = restart.again()
    sub = mqtt(broker.port, "sub", protocol=V5)
    sub.connect()
    sub.subscribe("e/#", qos=1)
    message = sub.expect_message()
    assert message.topic == "e/long"
    assert message.properties.MessageExpiryInterval <= 57  # three seconds of downtime counted
    sub.expect_no_message()


def test_persistent_session_subscriptions_and_queue(restart, mqtt):
    broker = restart.start()
    sub = mqtt(broker.port, "keeper", protocol=V5, clean=False)
    sub.connect(properties=connect_props(300))
    sub_props = Properties(PacketTypes.SUBSCRIBE)
    sub_props.SubscriptionIdentifier = 7
    sub.subscribe("q/#", options=SubscribeOptions(qos=1, noLocal=True), properties=sub_props)
    sub.disconnect()
    pub = mqtt(broker.port, "pub", protocol=V5)
    pub.connect()
    for n in range(5):
        pub.publish("q/x", f"m{n}".encode(), qos=1)
    pub.close()

    broker = restart(broker)
    sub = mqtt(broker.port, "keeper", protocol=V5, clean=False)
    flags, reason, _ = sub.connect(properties=connect_props(300))
    assert flags.session_present
    payloads = [sub.expect_message() for _ in range(5)]
    assert [m.payload for m in payloads] == [f"m{n}".encode() for n in range(5)]
    assert all(m.properties.SubscriptionIdentifier == [7] for m in payloads)
    # The subscription itself came back, with No Local: its own message is not delivered.
    sub.publish("q/own", b"own", qos=1)
    sub.expect_no_message()
    pub = mqtt(broker.port, "pub2", protocol=V5)
    pub.connect()
    pub.publish("q/after", b"after", qos=1)
    assert sub.expect_message().payload == b"after"


def test_a_new_persistent_session_is_kept_once_its_connack_came_however_soon_the_crash(restart):
    broker = restart.start()
    first = RawClient(broker.port, "newcomer", clean=False)
    assert not first.connack.session_present
    broker = restart(broker)  # at once

    again = RawClient(broker.port, "newcomer", clean=False)
    assert again.connack.session_present
    again.close()


def test_a_subscription_is_kept_once_its_suback_came_however_soon_the_crash(restart, mqtt):
    broker = restart.start()
    sub = RawClient(broker.port, "quick", clean=False)
    assert sub.subscribe("k/#", 1).packet_type.name == "SUBACK"
    broker = restart(broker)  # at once: no commit interval to wait out

    sub = RawClient(broker.port, "quick", clean=False)
    assert sub.connack.session_present
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("k/x", b"kept", qos=1)
    assert sub.next().payload == b"kept"
    sub.close()


def test_an_unsubscription_is_kept_once_its_unsuback_came(restart, mqtt):
    broker = restart.start()
    sub = RawClient(broker.port, "leaver", clean=False)
    assert sub.subscribe("u/#", 1).packet_type.name == "SUBACK"
    assert sub.subscribe("v/#", 1, packet_id=2).packet_type.name == "SUBACK"
    sub.send(Unsubscribe(3, ["u/#"]))
    assert sub.next().packet_type.name == "UNSUBACK"
    broker = restart(broker)

    sub = RawClient(broker.port, "leaver", clean=False)
    pub = mqtt(broker.port, "pub")
    pub.connect()
    pub.publish("u/x", b"gone", qos=1)
    pub.publish("v/x", b"kept", qos=1)
    assert sub.next().payload == b"kept"  # and not the one to u/x, published first
    sub.close()


def test_every_message_acknowledged_before_the_end_reaches_the_persistent_subscriber(restart):
    """A stream of QoS 1 publishes into a persistent session whose subscriber acknowledges as
    it goes but lags (ten in flight at a time), ended (kill -9 or SIGTERM) mid-stream: whatever
    got its PUBACK is delivered, before or after."""
    broker = restart.start("mqtt { max_inflight_window = 10, max_mqueue_len = 100000 }\n")
    sub = RawClient(broker.port, "drain", clean=False)
    assert sub.subscribe("load/#", 1).packet_type.name == "SUBACK"
    received = set()

    def drain(client: RawClient) -> None:
        try:
            while True:
                packet = client.next()
                if isinstance(packet, Publish):
                    received.add(packet.payload)
                    client.puback(packet.packet_id)
        except OSError:  # the broker went (ConnectionError is one)
            pass

    reader = threading.Thread(target=drain, args=(sub,), daemon=True)
    reader.start()
    pub = RawClient(broker.port, "loader", clean=True)
    acknowledged, sent, window = set(), 0, 100
    while len(acknowledged) < 3000:
        for n in range(sent, sent + window):
            pub.send(Publish("load/x", b"%d" % n, 1, False, False, n + 1))  # (fewer than 65,535 in all)
        sent += window
        for _ in range(window):
            acknowledged.add(b"%d" % (pub.next().packet_id - 1))
    for n in range(sent, sent + window):  # in flight when the broker goes
        pub.send(Publish("load/x", b"%d" % n, 1, False, False, n + 1))
    broker = restart(broker)
    try:
        while True:  # the acknowledgements that came out before the end count too
            acknowledged.add(b"%d" % (pub.next().packet_id - 1))
    except OSError:
        pass
    reader.join(TIMEOUT)

    sub = RawClient(broker.port, "drain", clean=False)
    assert sub.connack.session_present
    missing = acknowledged - received
    while missing:  # times out (the test fails) if any acknowledged message never comes
        packet = sub.next()
        if isinstance(packet, Publish):
            missing.discard(packet.payload)
            sub.puback(packet.packet_id)
    sub.close()


def test_in_flight_resent_with_dup_then_queued_in_order(restart, mqtt):
    broker = restart.start("mqtt { max_inflight_window = 3 }\n")
    sub = RawClient(broker.port, "slow", clean=False)
    assert sub.subscribe("f/#", 1).packet_type.name == "SUBACK"
    pub = mqtt(broker.port, "pub")
    pub.connect()
    for n in range(5):
        pub.publish("f/x", f"m{n}".encode(), qos=1)
    first = [sub.next() for _ in range(3)]  # the window: in flight, never acknowledged
    assert [p.payload for p in first] == [b"m0", b"m1", b"m2"] and not any(p.dup for p in first)
    sub.close()
    pub.close()

    broker = restart(broker)
    sub = RawClient(broker.port, "slow", clean=False)
    assert sub.connack.session_present
    again = [sub.next() for _ in range(3)]
    assert [(p.payload, p.packet_id, p.dup) for p in again] == [(p.payload, p.packet_id, True) for p in first]
    for packet in again:
        sub.puback(packet.packet_id)
    rest = [sub.next() for _ in range(2)]
    assert [(p.payload, p.dup) for p in rest] == [(b"m3", False), (b"m4", False)]
    sub.close()


def test_incoming_qos2_not_delivered_twice_after_restart(restart, mqtt):
    broker = restart.start()
    sub = mqtt(broker.port, "watcher")
    sub.connect()
    sub.subscribe("two/#", qos=0)
    pub = RawClient(broker.port, "sender", clean=False)
    answer = pub.publish("two/x", b"once", 2, packet_id=9)
    assert isinstance(answer, PubRec) and answer.packet_id == 9
    assert sub.expect_message().payload == b"once"
    pub.close()
    sub.close()

    broker = restart(broker)
    sub = mqtt(broker.port, "watcher")
    sub.connect()
    sub.subscribe("two/#", qos=0)
    pub = RawClient(broker.port, "sender", clean=False)
    assert pub.connack.session_present
    # The sender did get PUBREC; resending the PUBLISH (allowed) must not route it again.
    answer = pub.publish("two/x", b"once", 2, packet_id=9, dup=True)
    assert isinstance(answer, PubRec)
    assert pub.pubrel(9).packet_type.name == "PUBCOMP"
    sub.roundtrip()
    # A fresh QoS 2 message with the same id is new again (the PUBREL released it).
    assert isinstance(pub.publish("two/y", b"next", 2, packet_id=9), PubRec)
    assert sub.expect_message().payload == b"next"
    sub.expect_no_message()


def test_session_expiry_keeps_counting_while_down(restart, mqtt):
    broker = restart.start()
    short = mqtt(broker.port, "short", protocol=V5, clean=False)
    short.connect(properties=connect_props(2))
    short.subscribe("s/#", qos=1)
    short.disconnect()
    gone = time.monotonic()
    long = mqtt(broker.port, "long", protocol=V5, clean=False)
    long.connect(properties=connect_props(300))
    long.disconnect()
    # A QoS 1 PUBLISH is acknowledged once every change before it is durable: the sessions too.
    other = mqtt(broker.port, "other")
    other.connect()
    other.roundtrip()
    restart.end(broker)
    time.sleep(max(0.0, gone + 3 - time.monotonic()))  # the downtime itself is the point
    broker = restart.again()
    short = mqtt(broker.port, "short", protocol=V5, clean=False)
    flags, _, _ = short.connect(properties=connect_props(2))
    assert not flags.session_present
    long = mqtt(broker.port, "long", protocol=V5, clean=False)
    flags, _, _ = long.connect(properties=connect_props(300))
    assert flags.session_present


def test_delayed_will_survives_with_its_remaining_delay(restart, mqtt):
    broker = restart.start()
    dying = mqtt(broker.port, "dying", protocol=V5, clean=False)
    will_props = Properties(PacketTypes.WILLMESSAGE)
    will_props.WillDelayInterval = 3
    dying.client.will_set("will/dying", b"bye", qos=1, properties=will_props)
    dying.connect(properties=connect_props(300))
    dying.close()  # no DISCONNECT: the will waits its delay
    lost = time.monotonic()
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("will/#", qos=1)
    watcher.expect_no_message()
    watcher.close()

    broker = restart(broker)
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("will/#", qos=1)
    message = watcher.expect_message()
    assert message.payload == b"bye"
    assert time.monotonic() - lost >= 3 - 0.5  # not early: the delay counted from the loss


def test_will_of_a_connection_the_restart_ended(restart, mqtt):
    """A client connected when the broker died (or stopped) lost its connection then: its
    will is published, and reaches a persistent session subscribed to it."""
    broker = restart.start()
    watcher = mqtt(broker.port, "watcher", protocol=V5, clean=False)
    watcher.connect(properties=connect_props(300))
    watcher.subscribe("will/#", qos=1)
    watcher.disconnect()
    client = mqtt(broker.port, "alive", protocol=V5, clean=False)
    client.client.will_set("will/alive", b"lost", qos=1)
    client.connect(properties=connect_props(300))
    client.roundtrip()

    broker = restart(broker)
    watcher = mqtt(broker.port, "watcher", protocol=V5, clean=False)
    flags, _, _ = watcher.connect(properties=connect_props(300))
    assert flags.session_present
    assert watcher.expect_message().payload == b"lost"
    watcher.expect_no_message()
