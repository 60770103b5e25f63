"""MQTT rules the broker used to bend (issue 12), decided in-process: will topics,
enhanced authentication, Maximum Packet Size on every packet, clean sessions, the type
of each acknowledgement, the server keepalive cap, refusals the hooks hear of, and
retained messages after a SUBSCRIBE that matches many."""

import pytest

from appliance.broker.session import NEVER_EXPIRES
from appliance.config.model import LimitsConfig, MqttConfig
from appliance.mqtt.codec import MqttDecoder
from appliance.mqtt.packets import (
    Connect, PingReq, PubAck, PubComp, Publish, PubRec, Subscribe, Subscription, Will,
)


# -- will topics (MQTT-3.1.3-10 / 3.1.3-11) -------------------------------------------

@pytest.mark.parametrize("topic", ["", "willt/#", "willt/+/x"])
def test_v5_connect_with_an_invalid_will_topic_gets_connack_0x90(hub, topic):
    peer = hub.peer("w5", version=5, connect=False)
    ack = peer.connect(will=Will(topic, b"bye"))
    assert ack.reason_code == 0x90
    assert peer.closed
    assert hub.events.connacks == [("w5", 0x90)]
    assert hub.events.disconnects == [("w5", "connack_refused")]
    assert "w5" not in hub.broker.sessions


@pytest.mark.parametrize("topic", ["", "willt/#", "willt/+/x"])
def test_v3_connect_with_an_invalid_will_topic_is_closed_without_connack(hub, topic):
    peer = hub.peer("w3", version=4, connect=False)
    peer.send(Connect("w3", 4, True, 60, will=Will(topic, b"bye")))
    assert peer.transport.take() == b""  # as mosquitto: no CONNACK, just closed
    assert peer.closed
    assert hub.events.connacks == [("w3", 0x90)]
    assert hub.stats.connections_refused["will_topic_invalid"] == 1


def test_a_valid_will_topic_is_still_accepted_and_published(hub):
    watcher = hub.peer("watch")
    watcher.subscribe("willt/#")
    hub.peer("dies", will=Will("willt/a", b"gone")).drop()
    assert watcher.expect_message().topic == "willt/a"


# -- enhanced authentication (MQTT-4.12.0-1) ----------------------------------------

def test_an_unsupported_authentication_method_gets_0x8c_and_is_closed(hub):
    peer = hub.peer("scram", version=5, connect=False)
    ack = peer.connect(properties={"authentication_method": "SCRAM-SHA-1"})
    assert ack.reason_code == 0x8C
    assert peer.closed
    assert hub.events.connacks == [("scram", 0x8C)]
    assert "scram" not in hub.broker.sessions


# -- Maximum Packet Size for every packet we send (MQTT-3.1.2-24) -------------------

def _v5_raw(hub, client_id, max_size):
    peer = hub.peer(client_id, version=5, connect=False)
    peer.send(Connect(client_id, 5, True, 60, properties={"maximum_packet_size": max_size}))
    return peer


def test_connack_drops_its_properties_to_fit_the_clients_maximum_packet_size(hub):
    peer = _v5_raw(hub, "", 8)  # with an assigned client id the full CONNACK is > 40 bytes
    data = peer.transport.take()
    assert len(data) <= 8
    ack = MqttDecoder(1 << 20, protocol_version=5).feed(data)[0]
    assert ack.reason_code == 0 and ack.properties == {}


def test_nothing_larger_than_the_clients_maximum_packet_size_is_sent(hub):
    peer = _v5_raw(hub, "tiny", 2)
    assert peer.transport.take() == b""  # even a bare v5 CONNACK is 5 bytes
    peer.send(Subscribe(1, [Subscription("a/b", 1)]), PingReq())  # SUBACK 6 bytes, PINGRESP 2
    assert peer.transport.take() == b"\xd0\x00"
    assert hub.stats.packets_dropped_too_large == 2  # CONNACK, SUBACK


def test_acks_over_the_maximum_packet_size_are_not_sent(hub):
    peer = _v5_raw(hub, "small", 4)
    assert peer.transport.take() == b""  # CONNACK with its properties is more, bare it is 5
    peer.send(Publish("nobody/here", b"x", 1, False, False, 7))  # PUBACK 0x10: 5 bytes
    peer.send(Publish("nobody/here", b"x", 2, False, False, 8))  # PUBREC 0x10: 5 bytes
    assert peer.transport.take() == b""


# -- a clean session is never resumed (MQTT-3.1.2-6) -------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_a_clean_session_taken_over_by_a_persistent_connect_is_not_resumed(hub, version):
    props = {"session_expiry_interval": 300} if version == 5 else None
    first = hub.peer("cs", version=version, clean=True)  # v5: expiry 0
    first.subscribe("old/sub", qos=1)
    second = hub.peer("cs", version=version, connect=False)
    ack = second.connect(clean=False, properties=props)
    assert ack.reason_code == 0 and not ack.session_present
    assert first.closed
    assert hub.broker.sessions["cs"].subscriptions == {}
    hub.peer("pub").publish("old/sub", b"x", qos=1)
    second.expect_no_message()


def test_a_persistent_session_is_still_resumed(hub):
    first = hub.peer("ps", clean=False)
    first.subscribe("keep/sub", qos=1)
    second = hub.peer("ps", connect=False)
    assert second.connect(clean=False).session_present


# -- acknowledgements must match the QoS of the message (MQTT-4.3.2-1, 4.3.3-1) ------

def _one_in_flight(hub, qos, version):
    sub = hub.peer("s", version=version, clean=False, properties={"session_expiry_interval": 300}
                   if version == 5 else None)
    sub.subscribe("q/t", qos=2)
    hub.peer("p").publish("q/t", b"m", qos=qos)
    message = sub.expect_message(ack=False)
    return sub, message.packet_id


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos, wrong", [(1, PubComp), (2, PubAck), (1, PubRec), (2, PubComp)])
def test_a_wrong_acknowledgement_is_a_protocol_error_and_leaves_the_message_unacknowledged(
        hub, version, qos, wrong):
    sub, packet_id = _one_in_flight(hub, qos, version)
    sub.send(wrong(packet_id))
    packets = sub.read()
    assert not any(type(p).__name__ == "PubRel" for p in packets)  # a QoS 1 id gets no PUBREL
    if version == 5:
        assert [(type(p).__name__, p.reason_code) for p in packets] == [("Disconnect", 0x82)]
    assert sub.closed
    assert packet_id in hub.broker.sessions["s"].inflight
    assert ("s", "protocol_error") in hub.events.disconnects
    again = hub.peer("s", version=version, connect=False)
    assert again.connect(clean=False, properties={"session_expiry_interval": 300}
                         if version == 5 else None).session_present
    resent = again.expect_message(ack=False)
    assert resent.dup and resent.packet_id == packet_id


def test_the_right_acknowledgements_complete_the_exchanges(hub):
    sub, one = _one_in_flight(hub, 1, 5)
    sub.send(PubAck(one))
    assert not hub.broker.sessions["s"].inflight and not sub.closed
    hub.peer("p2").publish("q/t", b"m", qos=2)
    two = sub.expect_message(ack=False).packet_id
    sub.send(PubRec(two))
    sub.send(PubRec(two))  # a repeated PUBREC gets the PUBREL again
    assert [type(p).__name__ for p in sub.read()] == ["PubRel", "PubRel"]
    sub.send(PubComp(two))
    assert not hub.broker.sessions["s"].inflight and not sub.closed


def test_a_v5_pubrec_for_an_unknown_id_gets_pubrel_0x92(hub):
    peer = hub.peer("u", version=5)
    peer.send(PubRec(99))
    rel = peer.expect("PubRel")
    assert (rel.packet_id, rel.reason_code) == (99, 0x92)
    assert not peer.closed


# -- server keepalive cap (mqtt.max_keepalive) --------------------------------------

@pytest.mark.parametrize("asked", [0, 65535])
def test_v5_keepalive_is_capped_and_told_in_connack(hub_factory, asked):
    hub = hub_factory(MqttConfig(max_keepalive=30))
    peer = hub.peer("ka", version=5, connect=False)
    ack = peer.connect(keepalive=asked)
    assert ack.reason_code == 0 and ack.properties["server_keep_alive"] == 30
    assert peer.client.keepalive_timeout == 30 * hub.mqtt.keepalive_multiplier


def test_v5_keepalive_within_the_cap_is_kept_and_not_announced(hub_factory):
    hub = hub_factory(MqttConfig(max_keepalive=30))
    peer = hub.peer("ka", version=5, connect=False)
    ack = peer.connect(keepalive=20)
    assert "server_keep_alive" not in ack.properties
    assert peer.client.keepalive_timeout == 20 * hub.mqtt.keepalive_multiplier


@pytest.mark.parametrize("asked", [0, 31])
def test_v3_keepalive_over_the_cap_is_refused_as_mosquitto_does(hub_factory, asked):
    hub = hub_factory(MqttConfig(max_keepalive=30))
    assert hub.peer("ka3", version=4, connect=False).connect(keepalive=asked).reason_code == 2
    refused = hub.stats.connections_refused
    assert (refused["keepalive_too_long"], refused["client_id_invalid"]) == (1, 0)  # not a bad client id


def test_without_the_cap_any_keepalive_is_accepted(hub):
    ack = hub.peer("ka", version=5, connect=False).connect(keepalive=0)
    assert ack.reason_code == 0 and "server_keep_alive" not in ack.properties


# -- NanoMQ drop-in: a refused protocol level is an event like every refusal ----------

def test_unsupported_protocol_level_fires_connack_and_disconnected(hub):
    peer = hub.peer("", connect=False)
    peer.send_bytes(bytes([0x10, 14, 0, 4]) + b"MQTT" + bytes([9, 0x02, 0, 60, 0, 2]) + b"v9")
    assert peer.transport.take() == b"\x20\x02\x00\x01"
    assert hub.events.connacks == [("", 0x84)]
    assert hub.events.disconnects == [("", "connack_refused")]
    assert hub.stats.connections_refused["unsupported_protocol_version"] == 1


# -- offline sessions: a default expiry for v3 and a limit on stored sessions --------

def test_a_v3_persistent_session_expires_after_session_expiry_interval(hub_factory):
    hub = hub_factory(MqttConfig(session_expiry_interval=60))
    peer = hub.peer("v3p", clean=False)
    peer.subscribe("x/y", qos=1)
    peer.drop()
    hub.run_timers(after=59)
    assert "v3p" in hub.broker.sessions
    hub.run_timers(after=61)
    assert "v3p" not in hub.broker.sessions
    assert hub.stats.sessions_expired == 1


def test_the_default_v3_session_expiry_is_two_hours_and_0_means_never(hub_factory):
    assert hub_factory().peer("d", clean=False).client.session.expiry_interval == 7200
    assert hub_factory(MqttConfig(session_expiry_interval=0)).peer("n", clean=False).client.session.expiry_interval \
        == NEVER_EXPIRES


@pytest.mark.parametrize("version, code", [(4, 3), (5, 0x97)])
def test_new_sessions_beyond_max_sessions_are_refused_but_known_ones_resume(hub_factory, version, code):
    hub = hub_factory(limits=LimitsConfig(max_sessions=2))
    hub.peer("a", version=version, clean=False, properties={"session_expiry_interval": 60}
             if version == 5 else None).drop()
    hub.peer("b", version=version, clean=False, properties={"session_expiry_interval": 60}
             if version == 5 else None)
    assert hub.peer("c", version=version, connect=False).connect().reason_code == code
    assert hub.stats.sessions_refused["max_sessions"] == 1
    assert hub.stats.limits_hit["max_sessions"] == 1
    assert hub.peer("a", version=version, connect=False).connect(
        clean=False, properties={"session_expiry_interval": 60} if version == 5 else None).session_present


# -- retained messages after a SUBSCRIBE that matches many ---------------------------

def _retain_many(hub, count):
    pub = hub.peer("loader")
    for n in range(count):
        pub.publish(f"zz/{n // 10}/{n % 10}", b"r", retain=True)


def test_suback_comes_before_retained_messages_which_go_out_in_batches(hub):
    _retain_many(hub, 1000)
    sub = hub.peer("many")
    seen_at_pauses = []
    sub.transport.on_pause = lambda: seen_at_pauses.append(len(sub.transport.queued))
    sub.send(Subscribe(1, [Subscription(f"zz/+/{i}", 0) for i in range(10)]))
    packets = sub.read()
    assert type(packets[0]).__name__ == "SubAck"
    assert len(packets) == 1 + 1000
    # The first pause comes after the SUBACK alone is queued, then one per batch.
    assert seen_at_pauses[0] == 1
    assert sub.transport.pauses >= 1000 // 64


def test_other_clients_run_between_batches_and_a_takeover_stops_the_delivery(hub):
    _retain_many(hub, 1000)
    watcher = hub.peer("watcher")
    watcher.subscribe("live/#")
    sub = hub.peer("many")
    live = hub.peer("live")
    turns = []

    def others_run():
        turns.append(len(turns))
        live.publish("live/x", b"%d" % len(turns))
        if len(turns) == 3:
            hub.peer("many", connect=False).connect()  # takes the client id over

    sub.transport.on_pause = others_run
    sub.subscribe("zz/#")
    assert len(watcher.messages()) == 3  # delivered while the retained ones were going out
    retained = [p for p in sub.read() if type(p).__name__ == "Publish"]
    assert 0 < len(retained) < 1000 and sub.closed


def test_a_refusing_connack_respects_the_maximum_packet_size_too(hub):
    peer = hub.peer("r", version=5, connect=False)
    peer.send(Connect("r", 5, True, 60, will=Will("bad/#", b""), properties={"maximum_packet_size": 4}))
    assert peer.transport.take() == b""  # CONNACK 0x90 would be 5 bytes
    assert peer.closed and hub.events.connacks == [("r", 0x90)]
