"""End to end over real sockets with paho and a broker subprocess: CONNECT/CONNACK, client
ids, takeover, deadlines, resends, wills and shutdown. The protocol decisions themselves are
tested in-process (test_publish.py, test_subscribe.py, test_mqtt5.py, test_state.py)."""

import socket
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from appliance.mqtt.codec import encode
from appliance.mqtt.packets import Publish, Subscribe, Subscription
from tests.broker.raw import RawClient
from tests.conftest import TIMEOUT, raw_socket
from tests.security.security_helpers import metric


def _props(packet_type, **values):
    props = Properties(packet_type)
    for name, value in values.items():
        setattr(props, name, value)
    return props


@pytest.mark.parametrize("protocol", [paho.MQTTv31, paho.MQTTv311, paho.MQTTv5])
def test_each_protocol_version_connects_and_exchanges_messages(broker, mqtt, protocol):
    client = mqtt(broker.port, f"c-{protocol}", protocol=protocol)
    flags, reason, _ = client.connect()
    assert reason == 0
    assert not flags.session_present
    client.subscribe("t/1", qos=1)
    client.publish("t/1", b"hello", qos=1)
    message = client.expect_message()
    assert (message.topic, message.payload, message.qos) == ("t/1", b"hello", 1)


def test_second_connection_with_same_id_takes_over_and_v5_first_hears_0x8E(broker, mqtt):
    first = mqtt(broker.port, "same", protocol=paho.MQTTv5)
    first.connect()
    second = mqtt(broker.port, "same", protocol=paho.MQTTv5)
    assert second.connect()[1] == 0
    assert first.disconnects.get(timeout=TIMEOUT) == 0x8E
    second.subscribe("still/works", qos=1)
    second.publish("still/works", b"x", qos=1)
    assert second.expect_message().payload == b"x"


def test_connection_without_connect_is_closed(broker_factory):
    broker = broker_factory("mqtt { connect_timeout = 1s }\n")
    sock = raw_socket(broker.port)
    started = time.monotonic()
    assert sock.recv(1) == b""
    assert time.monotonic() - started < TIMEOUT


def test_keepalive_expiry_closes_silent_client_but_pings_keep_it(broker_factory):
    broker = broker_factory("mqtt { keepalive_multiplier = 1.5 }\n")
    silent = raw_socket(broker.port)
    talker = raw_socket(broker.port)
    for sock, cid in ((silent, b"silent"), (talker, b"talker")):
        # CONNECT 3.1.1, clean session, keepalive 1 s
        body = b"\x00\x04MQTT\x04\x02\x00\x01" + len(cid).to_bytes(2, "big") + cid
        sock.sendall(bytes([0x10, len(body)]) + body)
        assert sock.recv(4) == b"\x20\x02\x00\x00"
    started = time.monotonic()
    talker.settimeout(0.5)
    while time.monotonic() - started < 3:
        talker.sendall(b"\xc0\x00")  # PINGREQ
        assert talker.recv(2) == b"\xd0\x00"
        time.sleep(0.5)  # the client's own ping interval
    silent.settimeout(0.1)
    assert silent.recv(1) == b""  # closed after 1.5 s of silence, long before now
    talker.sendall(b"\xc0\x00")
    assert talker.recv(2) == b"\xd0\x00"


def test_sigterm_stops_the_broker_within_two_seconds(broker, mqtt):
    client = mqtt(broker.port, "held", protocol=paho.MQTTv5)
    client.connect()
    started = time.monotonic()
    assert broker.stop() == 0
    assert time.monotonic() - started < 2
    assert client.disconnects.get(timeout=TIMEOUT) == 0x8B  # server shutting down
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", broker.port), timeout=1)


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


def test_will_is_published_when_the_connection_drops(broker, mqtt):
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", qos=1)
    dying = mqtt(broker.port, "dying")
    dying.connect(will={"topic": "wills/dying", "payload": b"gone", "qos": 1})
    dying.close()  # no DISCONNECT
    message = watcher.expect_message()
    assert (message.topic, message.payload) == ("wills/dying", b"gone")


def test_delayed_wills_are_published_at_shutdown(broker, mqtt):
    watcher = mqtt(broker.port, "watcher", protocol=paho.MQTTv5)
    watcher.connect()
    watcher.subscribe("wills/#", qos=1)
    for name in ("gone", "here"):
        client = mqtt(broker.port, name, protocol=paho.MQTTv5, clean=False)
        will_props = _props(PacketTypes.WILLMESSAGE, WillDelayInterval=600)
        client.connect(will={"topic": f"wills/{name}", "payload": name.encode(), "qos": 1, "properties": will_props},
                       properties=_props(PacketTypes.CONNECT, SessionExpiryInterval=600))
        if name == "gone":
            client.close()  # offline now, its will 10 minutes away
    watcher.roundtrip()
    assert watcher.messages.empty()
    assert broker.stop() == 0  # the sessions end with the process: both wills are due
    assert sorted(watcher.expect_message().payload for _ in range(2)) == [b"gone", b"here"]
    assert watcher.disconnects.get(timeout=TIMEOUT) == 0x8B


def test_a_taken_over_connection_that_keeps_sending_is_not_routed(broker, mqtt):
    """The old socket of a taken-over client: its PUBLISH is not routed, its SUBSCRIBE
    raises nothing; both are counted."""
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("after/#", qos=1)
    old = raw_socket(broker.port)
    old.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    old.sendall(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02st")
    assert old.recv(4) == b"\x20\x02\x00\x00"
    old.sendall(b"\x82\x08\x00\x01\x00\x03big\x01")  # SUBSCRIBE big QoS 1, then never read
    pub = mqtt(broker.port, "pub")
    pub.connect()
    for _ in range(100):  # 6.5 MB: more than the stuck socket's buffers and the outbox budget
        pub.publish("big", b"x" * 65536, qos=1)
    successor = RawClient(broker.port, "st")  # takes the session over
    old.sendall(encode(Publish("after/takeover", b"must not arrive", 1, False, False, 9, {}), 4)
                + encode(Subscribe(10, [Subscription("after/#", 1)]), 4))
    # Reading those is what ends the old connection (it only waited to flush).
    broker.wait_for_log(r"connection of st@127\.0\.0\.1:\d+ closed with \d+ byte\(s\) unsent")
    assert metric(broker, "appliance_packets_dropped_closing_total") == 2
    successor.roundtrip()
    pub.roundtrip()
    watcher.expect_no_message()
    assert "Traceback" not in broker.logs() and "ERROR" not in broker.logs()
    old.close()
