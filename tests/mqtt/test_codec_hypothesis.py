"""Property-based: every valid packet survives encode then decode, in every version and however
the stream is split; and no byte string makes the decoder fail other than with an MqttError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.mqtt import (
    PROPERTIES, Auth, ConnAck, Connect, Disconnect, MqttDecoder, MqttError, PacketType, PingReq,
    PingResp, PubAck, PubComp, Publish, PubRec, PubRel, SubAck, Subscribe, Subscription, UnsubAck,
    Unsubscribe, Will, encode,
)
from appliance.mqtt import reason_codes as rc
from appliance.mqtt.properties import BINARY, BYTE, FOUR_BYTE, TWO_BYTE, UTF8, UTF8_PAIR, VARINT, WILL
from codec_helpers import CONNECT_BYTES

VERSIONS = st.sampled_from([3, 4, 5])
# MQTT strings: any Unicode but U+0000 and the surrogates (which UTF-8 cannot carry).
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
blob = st.binary(max_size=40)
packet_id = st.integers(1, 0xFFFF)

_KIND_LIMITS = {BYTE: 0xFF, TWO_BYTE: 0xFFFF, FOUR_BYTE: 0xFFFFFFFF, VARINT: 268_435_455}


def _value(prop) -> st.SearchStrategy:
    if prop.kind in _KIND_LIMITS:
        low, high = 0, _KIND_LIMITS[prop.kind]
        if prop.valid is not None:
            low, high = max(low, prop.valid.start), min(high, prop.valid.stop - 1)
        return st.integers(low, high)
    return {UTF8: text, BINARY: blob, UTF8_PAIR: st.tuples(text, text)}[prop.kind]


def properties(version: int, packet_type: int) -> st.SearchStrategy:
    if version < 5:
        return st.just({})
    optional = {}
    for prop in PROPERTIES.values():
        if packet_type in prop.packets:
            if packet_type in prop.repeatable_in:
                optional[prop.name] = st.lists(_value(prop), min_size=1, max_size=3)
            elif prop.is_list:
                optional[prop.name] = st.lists(_value(prop), min_size=1, max_size=1)
            else:
                optional[prop.name] = _value(prop)
    return st.fixed_dictionaries({}, optional=optional)


def codes(version: int, v5_codes) -> st.SearchStrategy:
    return st.sampled_from(sorted(v5_codes)) if version == 5 else st.just(0)


def connect(version: int) -> st.SearchStrategy:
    wills = st.builds(Will, text, blob, st.integers(0, 2), st.booleans(), properties(version, WILL))
    return st.builds(
        lambda client_id, clean, keepalive, username, password, will, props: Connect(
            client_id, version, clean, keepalive, username,
            password if username is not None or version == 5 else None, will, props,
            "MQIsdp" if version == 3 else "MQTT"),
        text, st.booleans(), st.integers(0, 0xFFFF), st.none() | text, st.none() | blob,
        st.none() | wills, properties(version, PacketType.CONNECT))


def publish(version: int) -> st.SearchStrategy:
    qos0 = st.builds(Publish, text, blob, st.just(0), st.booleans(), st.just(False), st.none(),
                     properties(version, PacketType.PUBLISH))
    qos12 = st.builds(Publish, text, blob, st.integers(1, 2), st.booleans(), st.booleans(),
                      packet_id, properties(version, PacketType.PUBLISH))
    return qos0 | qos12


def subscription(version: int) -> st.SearchStrategy:
    if version < 5:
        return st.builds(Subscription, text, st.integers(0, 2))
    return st.builds(Subscription, text, st.integers(0, 2), st.booleans(), st.booleans(),
                     st.integers(0, 2))


def ack(cls, version: int, v5_codes) -> st.SearchStrategy:
    return st.builds(cls, packet_id, codes(version, v5_codes),
                     properties(version, cls.packet_type))


def after_connect_packet(version: int) -> st.SearchStrategy:
    """Any packet but CONNECT, as `version` can say it."""
    suback_codes = rc.SUBACK_CODES if version == 5 else rc.V3_SUBACK_CODES
    connack_codes = rc.CONNACK_CODES if version == 5 else rc.V3_CONNACK_CODES
    choices = [
        st.builds(ConnAck, st.sampled_from(sorted(connack_codes)), st.booleans(),
                  properties(version, PacketType.CONNACK)),
        publish(version),
        ack(PubAck, version, rc.PUBACK_CODES),
        ack(PubRec, version, rc.PUBACK_CODES),
        ack(PubRel, version, rc.PUBREL_CODES),
        ack(PubComp, version, rc.PUBREL_CODES),
        st.builds(Subscribe, packet_id, st.lists(subscription(version), min_size=1, max_size=4),
                  properties(version, PacketType.SUBSCRIBE)),
        st.builds(SubAck, packet_id, st.lists(st.sampled_from(sorted(suback_codes)), min_size=1, max_size=4),
                  properties(version, PacketType.SUBACK)),
        st.builds(Unsubscribe, packet_id, st.lists(text, min_size=1, max_size=4),
                  properties(version, PacketType.UNSUBSCRIBE)),
        st.builds(UnsubAck, packet_id,
                  st.lists(st.sampled_from(sorted(rc.UNSUBACK_CODES)), min_size=1, max_size=4)
                  if version == 5 else st.just([]),
                  properties(version, PacketType.UNSUBACK)),
        st.just(PingReq()),
        st.just(PingResp()),
        st.builds(Disconnect, codes(version, rc.DISCONNECT_CODES),
                  properties(version, PacketType.DISCONNECT)),
    ]
    if version == 5:
        choices.append(st.builds(Auth, codes(version, rc.AUTH_CODES), properties(version, PacketType.AUTH)))
    return st.one_of(choices)


@st.composite
def sessions(draw):
    """A version, a CONNECT then other packets, and the points where the stream is split."""
    version = draw(VERSIONS)
    packets = [draw(connect(version))] + draw(st.lists(after_connect_packet(version), max_size=6))
    stream = b"".join(encode(p, version) for p in packets)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    return version, packets, stream, cuts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_every_valid_packet_round_trips_however_the_stream_is_split(session):
    version, packets, stream, cuts = session
    decoder = MqttDecoder()
    decoded = []
    for start, stop in zip([0] + cuts, cuts + [len(stream)]):
        decoded += decoder.feed(stream[start:stop])
    assert decoded == packets
    assert decoder.protocol_version == version


@settings(max_examples=150, deadline=None)
@given(VERSIONS, st.data())
def test_every_packet_type_round_trips_alone(version, data):
    packet = data.draw(after_connect_packet(version))
    assert MqttDecoder(protocol_version=version).feed(encode(packet, version)) == [packet]


def _feed_never_crashes(decoder: MqttDecoder, chunks: list[bytes]) -> None:
    try:
        for chunk in chunks:
            decoder.feed(chunk)
    except MqttError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_garbage_never_raises_anything_but_mqtt_errors(chunks):
    _feed_never_crashes(MqttDecoder(max_packet_size=4096), chunks)


@settings(max_examples=400, deadline=None)
@given(VERSIONS, st.lists(st.binary(max_size=64), max_size=4))
def test_garbage_after_connect_never_raises_anything_but_mqtt_errors(version, chunks):
    _feed_never_crashes(MqttDecoder(max_packet_size=4096), [CONNECT_BYTES[version]] + chunks)


@st.composite
def mutated_sessions(draw):
    """A valid session with a few bytes overwritten: garbage that gets deep into packets."""
    _, _, stream, cuts = draw(sessions())
    data = bytearray(stream)
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data), cuts


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sessions())
def test_corrupted_sessions_never_raise_anything_but_mqtt_errors(session):
    stream, cuts = session
    _feed_never_crashes(MqttDecoder(), [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])])
