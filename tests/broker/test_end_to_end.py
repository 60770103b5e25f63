"""CONNECT/CONNACK, client ids, takeover, keepalive: MQTT 3.1, 3.1.1 and 5.0 with paho."""

import socket
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from tests.conftest import TIMEOUT, raw_socket


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


def test_v5_client_with_empty_id_is_assigned_one(broker, mqtt):
    client = mqtt(broker.port, "", protocol=paho.MQTTv5)
    _, reason, props = client.connect()
    assert reason == 0
    assert props.AssignedClientIdentifier


def test_v311_empty_id_is_accepted_with_clean_session(broker, mqtt):
    _, reason, _ = mqtt(broker.port, "", clean=True).connect()
    assert reason == 0


def test_v311_empty_id_without_clean_session_is_refused_with_identifier_rejected(broker):
    sock = raw_socket(broker.port)
    # CONNECT, MQTT 3.1.1, clean session 0, keepalive 60, empty client id
    sock.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x00, 0, 60, 0, 0]))
    assert sock.recv(4) == b"\x20\x02\x00\x02"
    assert sock.recv(1) == b""  # and the connection is closed


def test_unknown_protocol_level_is_refused_with_unacceptable_protocol_version(broker):
    sock = raw_socket(broker.port)
    sock.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([9, 0x02, 0, 60, 0, 0]))
    assert sock.recv(4) == b"\x20\x02\x00\x01"
    assert sock.recv(1) == b""


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


def test_v5_connack_announces_the_limits(broker_factory, mqtt):
    broker = broker_factory("mqtt { max_packet_size = 64KB, max_inflight_window = 16 }\n")
    _, _, props = mqtt(broker.port, "limits", protocol=paho.MQTTv5).connect()
    assert props.MaximumPacketSize == 64 * 1024
    assert props.ReceiveMaximum == 16


def test_v5_session_resumes_with_session_expiry(broker, mqtt):
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 60
    first = mqtt(broker.port, "resume", protocol=paho.MQTTv5, clean=False)
    first.connect(properties=props)
    first.subscribe("r/1", qos=1)
    first.disconnect()
    again = mqtt(broker.port, "resume", protocol=paho.MQTTv5, clean=False)
    flags, _, _ = again.connect(properties=props)
    assert flags.session_present
    publisher = mqtt(broker.port, "pub")
    publisher.connect()
    publisher.publish("r/1", b"kept", qos=1)
    assert again.expect_message().payload == b"kept"


def test_v5_session_without_expiry_ends_at_disconnect(broker, mqtt):
    first = mqtt(broker.port, "gone", protocol=paho.MQTTv5, clean=False)
    first.connect()
    first.subscribe("g/1", qos=1)
    first.disconnect()
    again = mqtt(broker.port, "gone", protocol=paho.MQTTv5, clean=False)
    flags, _, _ = again.connect()
    assert not flags.session_present


def test_sigterm_stops_the_broker_within_two_seconds(broker, mqtt):
    client = mqtt(broker.port, "held", protocol=paho.MQTTv5)
    client.connect()
    started = time.monotonic()
    assert broker.stop() == 0
    assert time.monotonic() - started < 2
    assert client.disconnects.get(timeout=TIMEOUT) == 0x8B  # server shutting down
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", broker.port), timeout=1)
