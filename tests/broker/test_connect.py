"""CONNECT/CONNACK decisions: client ids, protocol levels, announced limits, session
resumption (in-process; the socket-level ones are in test_over_sockets.py)."""

from appliance.config.model import MqttConfig


def test_v5_client_with_empty_id_is_assigned_one(hub):
    peer = hub.peer("", version=5, connect=False)
    ack = peer.connect()
    assert ack.reason_code == 0
    assert ack.properties["assigned_client_identifier"]


def test_v311_empty_id_is_accepted_with_clean_session(hub):
    assert hub.peer("", connect=False).connect(clean=True).reason_code == 0


def test_v311_empty_id_without_clean_session_is_refused_with_identifier_rejected(hub):
    peer = hub.peer("", connect=False)
    # CONNECT, MQTT 3.1.1, clean session 0, keepalive 60, empty client id
    peer.send_bytes(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x00, 0, 60, 0, 0]))
    assert peer.transport.take() == b"\x20\x02\x00\x02"
    assert peer.closed  # and the connection is closed


def test_unknown_protocol_level_is_refused_with_unacceptable_protocol_version(hub):
    peer = hub.peer("", connect=False)
    peer.send_bytes(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([9, 0x02, 0, 60, 0, 0]))
    assert peer.transport.take() == b"\x20\x02\x00\x01"
    assert peer.closed


def test_v5_connack_announces_the_limits(hub_factory):
    hub = hub_factory(MqttConfig(max_packet_size=64 * 1024, max_inflight_window=16))
    props = hub.peer("limits", version=5, connect=False).connect().properties
    assert props["maximum_packet_size"] == 64 * 1024
    assert props["receive_maximum"] == 16


def test_v5_session_resumes_with_session_expiry(hub):
    expiry = {"session_expiry_interval": 60}
    first = hub.peer("resume", version=5, clean=False, properties=expiry)
    first.subscribe("r/1", qos=1)
    first.disconnect()
    again = hub.peer("resume", version=5, connect=False)
    assert again.connect(clean=False, properties=expiry).session_present
    hub.peer("pub").publish("r/1", b"kept", qos=1)
    assert again.expect_message().payload == b"kept"


def test_v5_session_without_expiry_ends_at_disconnect(hub):
    first = hub.peer("gone", version=5, clean=False)
    first.subscribe("g/1", qos=1)
    first.disconnect()
    assert not hub.peer("gone", version=5, connect=False).connect(clean=False).session_present


def test_v5_session_expires_after_its_interval(hub):
    first = hub.peer("brief", version=5, clean=False, properties={"session_expiry_interval": 5})
    first.subscribe("b/1", qos=1)
    first.drop()
    hub.run_timers(after=4.5)
    assert "brief" in hub.broker.sessions
    hub.run_timers(after=5.0)
    assert "brief" not in hub.broker.sessions
    assert hub.broker.subscription_count() == 0
