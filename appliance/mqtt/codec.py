"""Sans-I/O MQTT 3.1 / 3.1.1 / 5.0 codec: `MqttDecoder` turns bytes into packets, `encode`
turns packets back into bytes, `publish_parts` encodes one PUBLISH for many subscribers.

The decoder raises the `errors` that carry the reason code to answer with; encoding a packet
the protocol cannot express (a field out of range, a property not allowed) is the caller's bug
and raises ValueError (or struct.error / OverflowError for integers out of range).
"""

from __future__ import annotations

import struct

from . import reason_codes as rc
from .datatypes import (
    encode_binary, encode_utf8, encode_varint, read_binary, read_two_byte, read_utf8,
)
from .errors import (
    MalformedPacket, MqttError, PacketTooLarge, ProtocolError, UnsupportedProtocolVersion,
)
from .packets import (
    MQTT_3_1, MQTT_3_1_1, MQTT_5, Auth, ConnAck, Connect, Disconnect, PacketType, PingReq,
    PingResp, PubAck, PubComp, Publish, PubRec, PubRel, SubAck, Subscribe, Subscription, UnsubAck,
    Unsubscribe, Will,
)
from .properties import WILL, encode_properties, read_properties

_PROTOCOL_VERSIONS = {("MQIsdp", 3): MQTT_3_1, ("MQTT", 4): MQTT_3_1_1, ("MQTT", 5): MQTT_5}
_PROTOCOL_NAMES = {MQTT_3_1: b"\x00\x06MQIsdp", MQTT_3_1_1: b"\x00\x04MQTT", MQTT_5: b"\x00\x04MQTT"}

# The low nibble of the first byte every packet type but PUBLISH must carry (MQTT 5.0 2.1.3).
_FIXED_FLAGS = (None, 0, 0, None, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0)

_pack_header = struct.Struct("!BB").pack
_pack_publish_header = struct.Struct("!BBH").pack  # first byte, short remaining length, topic length
_pack_short = struct.Struct("!H").pack


class MqttDecoder:
    """Decodes the byte stream of one connection into packets, buffering partial ones.

    Server side: the first packet must be CONNECT, which sets `protocol_version`; a tool reading
    the server's side of a session sets `protocol_version` up front instead. After an error the
    decoder is spent: every later `feed` raises the same error.
    """

    __slots__ = ("max_packet_size", "protocol_version", "_buffer", "_needed", "_connect_seen",
                 "_error")

    def __init__(self, max_packet_size: int = 1 << 20, *, protocol_version: int | None = None):
        self.max_packet_size = max_packet_size
        self.protocol_version = protocol_version
        self._buffer = bytearray()
        self._needed = 0  # buffered bytes needed before the next packet can be complete
        self._connect_seen = False
        self._error: MqttError | None = None

    def feed(self, data: bytes) -> list:
        """Every packet completed by `data`, in order.

        On bad input raises an `MqttError` whose `packets` holds the packets decoded before it.
        """
        if self._error is not None:
            self._error.packets = []
            raise self._error
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._needed:
                return []
            data = bytes(buffer)
            buffer.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        packets = []
        version = self.protocol_version
        max_size = self.max_packet_size
        end = len(data)
        pos = 0
        self._needed = 0
        try:
            while end - pos >= 2:
                first = data[pos]
                length = data[pos + 1]
                body = pos + 2
                if length >= 0x80:
                    length, body = _remaining_length(data, pos + 1, end)
                    if body < 0:
                        break
                stop = body + length
                if stop - pos > max_size:
                    raise PacketTooLarge(
                        f"packet of {stop - pos} bytes exceeds the maximum of {max_size}")
                if stop > end:
                    self._needed = stop - pos
                    break
                if first >> 4 == 3 and version is not None:
                    packets.append(_decode_publish(data, body, stop, first, version))
                else:
                    packets.append(self._decode_control(data, body, stop, first))
                    version = self.protocol_version
                pos = stop
        except MqttError as error:
            error.packets = packets
            self._error = error
            raise
        if pos < end:
            buffer += memoryview(data)[pos:]
        return packets

    def _decode_control(self, data: bytes, pos: int, end: int, first: int):
        packet_type = first >> 4
        if packet_type == PacketType.CONNECT:
            if self._connect_seen:
                raise ProtocolError("second CONNECT on the connection")
        elif self.protocol_version is None:
            raise ProtocolError("the first packet must be CONNECT")
        if first & 0x0F != _FIXED_FLAGS[packet_type]:
            raise MalformedPacket(f"reserved flags 0x{first & 0x0F:X} in packet type {packet_type}")
        if packet_type == PacketType.CONNECT:
            connect = _decode_connect(data, pos, end)
            self._connect_seen = True
            self.protocol_version = connect.protocol_version
            return connect
        version = self.protocol_version
        if packet_type == 0 or (packet_type == PacketType.AUTH and version < MQTT_5):
            raise MalformedPacket(f"reserved packet type {packet_type}")
        return _DECODERS[packet_type](data, pos, end, version)


def _remaining_length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(length, offset of the body), or (0, -1) while the length's bytes are still incomplete."""
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= end:
            return 0, -1
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise MalformedPacket("remaining length longer than four bytes")


# -- decoding ---------------------------------------------------------------------------


def _decode_publish(data: bytes, pos: int, end: int, first: int, version: int) -> Publish:
    qos = (first >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    dup = first & 0x08
    if dup and not qos:
        raise MalformedPacket("PUBLISH with QoS 0 and DUP set")
    if pos + 2 > end:
        raise MalformedPacket("truncated PUBLISH")
    start = pos + 2
    pos = start + ((data[pos] << 8) | data[pos + 1])
    if pos > end:
        raise MalformedPacket("topic length overruns the packet")
    try:
        topic = data[start:pos].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("topic name is not valid UTF-8") from None
    if "\x00" in topic:
        raise MalformedPacket("topic name contains U+0000")
    packet_id = None
    if qos:
        if pos + 2 > end:
            raise MalformedPacket("truncated PUBLISH packet identifier")
        packet_id = (data[pos] << 8) | data[pos + 1]
        if not packet_id:
            raise ProtocolError("PUBLISH with packet identifier 0")
        pos += 2
    if version == MQTT_5 and not (pos < end and data[pos] == 0):
        properties, pos = read_properties(data, pos, end, PacketType.PUBLISH)
    else:
        properties = {}
        pos += version == MQTT_5  # the empty property block
    return Publish(topic, data[pos:end], qos, bool(first & 1), bool(dup), packet_id, properties)


def _decode_connect(data: bytes, pos: int, end: int) -> Connect:
    name, pos = read_utf8(data, pos, end)
    if pos >= end:
        raise MalformedPacket("truncated CONNECT")
    level = data[pos]
    version = _PROTOCOL_VERSIONS.get((name, level))
    if version is None:
        raise UnsupportedProtocolVersion(f"unsupported protocol {name!r} level {level}", name, level)
    if pos + 4 > end:
        raise MalformedPacket("truncated CONNECT")
    flags = data[pos + 1]
    keepalive = (data[pos + 2] << 8) | data[pos + 3]
    pos += 4
    if flags & 0x01:
        raise MalformedPacket("reserved CONNECT flag set")
    will_flag = flags & 0x04
    will_qos = (flags >> 3) & 3
    will_retain = bool(flags & 0x20)
    if will_flag:
        if will_qos == 3:
            raise MalformedPacket("will QoS 3")
    elif will_qos or will_retain:
        raise MalformedPacket("will QoS or retain set without the will flag")
    if version < MQTT_5 and flags & 0x40 and not flags & 0x80:
        raise MalformedPacket("password without user name")
    properties = {}
    if version == MQTT_5:
        properties, pos = read_properties(data, pos, end, PacketType.CONNECT)
    client_id, pos = read_utf8(data, pos, end)
    will = None
    if will_flag:
        will_properties = {}
        if version == MQTT_5:
            will_properties, pos = read_properties(data, pos, end, WILL)
        will_topic, pos = read_utf8(data, pos, end)
        will_payload, pos = read_binary(data, pos, end)
        will = Will(will_topic, will_payload, will_qos, will_retain, will_properties)
    username = password = None
    if flags & 0x80:
        username, pos = read_utf8(data, pos, end)
    if flags & 0x40:
        password, pos = read_binary(data, pos, end)
    _expect_end(pos, end)
    return Connect(client_id, version, bool(flags & 0x02), keepalive, username, password, will,
                   properties, name)


def _decode_connack(data: bytes, pos: int, end: int, version: int) -> ConnAck:
    if pos + 2 > end:
        raise MalformedPacket("truncated CONNACK")
    flags = data[pos]
    reason_code = data[pos + 1]
    if flags & 0xFE:
        raise MalformedPacket("reserved CONNACK flags set")
    _check_code(reason_code, rc.CONNACK_CODES if version == MQTT_5 else rc.V3_CONNACK_CODES)
    properties, pos = _v5_properties(data, pos + 2, end, version, PacketType.CONNACK)
    _expect_end(pos, end)
    return ConnAck(reason_code, bool(flags), properties)


def _ack_decoder(cls, codes: frozenset):
    """Decoder of PUBACK, PUBREC, PUBREL or PUBCOMP: v5 may omit the reason code and properties."""
    packet_type = cls.packet_type

    def decode(data: bytes, pos: int, end: int, version: int):
        packet_id, pos = _read_packet_id(data, pos, end)
        reason_code, properties = _optional_reason(data, pos, end, version, codes, packet_type)
        return cls(packet_id, reason_code, properties)

    return decode


def _decode_subscribe(data: bytes, pos: int, end: int, version: int) -> Subscribe:
    packet_id, pos = _read_packet_id(data, pos, end)
    properties, pos = _v5_properties(data, pos, end, version, PacketType.SUBSCRIBE)
    subscriptions = []
    while pos < end:
        topic_filter, pos = read_utf8(data, pos, end)
        if pos >= end:
            raise MalformedPacket("topic filter without subscription options")
        options = data[pos]
        pos += 1
        qos = options & 0x03
        if qos == 3:
            raise MalformedPacket("subscription with QoS 3")
        if version == MQTT_5:
            retain_handling = (options >> 4) & 0x03
            if options & 0xC0 or retain_handling == 3:
                raise MalformedPacket("reserved subscription options set")
            subscriptions.append(Subscription(
                topic_filter, qos, bool(options & 0x04), bool(options & 0x08), retain_handling))
        else:
            if options & 0xFC:
                raise MalformedPacket("reserved subscription options set")
            subscriptions.append(Subscription(topic_filter, qos))
    if not subscriptions:
        raise ProtocolError("SUBSCRIBE without topic filters")
    return Subscribe(packet_id, subscriptions, properties)


def _decode_suback(data: bytes, pos: int, end: int, version: int) -> SubAck:
    packet_id, pos = _read_packet_id(data, pos, end)
    properties, pos = _v5_properties(data, pos, end, version, PacketType.SUBACK)
    reason_codes = list(data[pos:end])
    if not reason_codes:
        raise ProtocolError("SUBACK without reason codes")
    codes = rc.SUBACK_CODES if version == MQTT_5 else rc.V3_SUBACK_CODES
    for code in reason_codes:
        _check_code(code, codes)
    return SubAck(packet_id, reason_codes, properties)


def _decode_unsubscribe(data: bytes, pos: int, end: int, version: int) -> Unsubscribe:
    packet_id, pos = _read_packet_id(data, pos, end)
    properties, pos = _v5_properties(data, pos, end, version, PacketType.UNSUBSCRIBE)
    topic_filters = []
    while pos < end:
        topic_filter, pos = read_utf8(data, pos, end)
        topic_filters.append(topic_filter)
    if not topic_filters:
        raise ProtocolError("UNSUBSCRIBE without topic filters")
    return Unsubscribe(packet_id, topic_filters, properties)


def _decode_unsuback(data: bytes, pos: int, end: int, version: int) -> UnsubAck:
    packet_id, pos = _read_packet_id(data, pos, end)
    if version < MQTT_5:
        _expect_end(pos, end)
        return UnsubAck(packet_id)
    properties, pos = read_properties(data, pos, end, PacketType.UNSUBACK)
    reason_codes = list(data[pos:end])
    if not reason_codes:
        raise ProtocolError("UNSUBACK without reason codes")
    for code in reason_codes:
        _check_code(code, rc.UNSUBACK_CODES)
    return UnsubAck(packet_id, reason_codes, properties)


def _empty_decoder(cls):
    def decode(data: bytes, pos: int, end: int, version: int):
        _expect_end(pos, end)
        return cls()

    return decode


def _reason_decoder(cls, codes: frozenset):
    """Decoder of DISCONNECT or AUTH: v5 may omit the reason code and properties."""
    packet_type = cls.packet_type

    def decode(data: bytes, pos: int, end: int, version: int):
        reason_code, properties = _optional_reason(data, pos, end, version, codes, packet_type)
        return cls(reason_code, properties)

    return decode


def _read_packet_id(data: bytes, pos: int, end: int) -> tuple[int, int]:
    packet_id, pos = read_two_byte(data, pos, end)
    if not packet_id:
        raise ProtocolError("packet identifier 0")
    return packet_id, pos


def _v5_properties(data: bytes, pos: int, end: int, version: int, packet_type: int):
    if version == MQTT_5:
        return read_properties(data, pos, end, packet_type)
    return {}, pos


def _optional_reason(data: bytes, pos: int, end: int, version: int, codes: frozenset,
                     packet_type: int) -> tuple[int, dict]:
    """The rest of an ack, DISCONNECT or AUTH: in v5 a reason code then properties, either
    of which may be left out (0 and none); before v5, nothing."""
    reason_code = 0
    properties = {}
    if version == MQTT_5 and pos < end:
        reason_code = data[pos]
        _check_code(reason_code, codes)
        pos += 1
        if pos < end:
            properties, pos = read_properties(data, pos, end, packet_type)
    _expect_end(pos, end)
    return reason_code, properties


def _check_code(code: int, codes: frozenset) -> None:
    if code not in codes:
        raise ProtocolError(f"reason code 0x{code:02X} is not valid in this packet")


def _expect_end(pos: int, end: int) -> None:
    if pos != end:
        raise MalformedPacket(f"{end - pos} unexpected bytes at the end of the packet")


_DECODERS = (
    None, None, _decode_connack, None,  # CONNECT and PUBLISH have their own paths
    _ack_decoder(PubAck, rc.PUBACK_CODES), _ack_decoder(PubRec, rc.PUBACK_CODES),
    _ack_decoder(PubRel, rc.PUBREL_CODES), _ack_decoder(PubComp, rc.PUBREL_CODES),
    _decode_subscribe, _decode_suback, _decode_unsubscribe, _decode_unsuback,
    _empty_decoder(PingReq), _empty_decoder(PingResp),
    _reason_decoder(Disconnect, rc.DISCONNECT_CODES), _reason_decoder(Auth, rc.AUTH_CODES),
)


# -- encoding ---------------------------------------------------------------------------


def encode(packet, protocol_version: int) -> bytes:
    """The bytes of `packet` as `protocol_version` (3, 4 or 5) says it."""
    if protocol_version not in _PROTOCOL_NAMES:
        raise ValueError(f"unknown MQTT protocol version {protocol_version}")
    return _ENCODERS[packet.__class__](packet, protocol_version)


def publish_parts(packet: Publish, protocol_version: int) -> tuple[bytes, bytes]:
    """Encode a PUBLISH once for many subscribers, as ``(head, tail)``.

    The packet is ``head + packet_id.to_bytes(2, "big") + tail`` when QoS > 0 and
    ``head + tail`` at QoS 0; `packet.packet_id` is ignored. A resend sets DUP by OR-ing 0x08
    into the first byte of head.
    """
    topic = packet.topic.encode("utf-8")
    qos = packet.qos
    tail = packet.payload
    if protocol_version == MQTT_5:
        tail = encode_properties(packet.properties, PacketType.PUBLISH) + tail
    remaining = 2 + len(topic) + (2 if qos else 0) + len(tail)
    return _publish_head(packet, topic, remaining), tail


def _encode_publish(packet: Publish, version: int) -> bytes:
    topic = packet.topic.encode("utf-8")
    qos = packet.qos
    payload = packet.payload
    properties = b""
    if version == MQTT_5:
        properties = (encode_properties(packet.properties, PacketType.PUBLISH)
                      if packet.properties else b"\x00")
    if qos:
        packet_id = packet.packet_id
        if not packet_id:
            raise ValueError("a PUBLISH with QoS > 0 needs a packet identifier")
        remaining = 4 + len(topic) + len(properties) + len(payload)
        return b"".join((_publish_head(packet, topic, remaining), _pack_short(packet_id),
                         properties, payload))
    remaining = 2 + len(topic) + len(properties) + len(payload)
    return b"".join((_publish_head(packet, topic, remaining), properties, payload))


def _publish_head(packet: Publish, topic: bytes, remaining: int) -> bytes:
    qos = packet.qos
    if not 0 <= qos <= 2:
        raise ValueError(f"QoS {qos}")
    first = 0x30 | (qos << 1) | (0x08 if packet.dup else 0) | (0x01 if packet.retain else 0)
    if remaining < 0x80:
        return _pack_publish_header(first, remaining, len(topic)) + topic
    return bytes((first,)) + encode_varint(remaining) + encode_binary(topic)


def _frame(first: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return _pack_header(first, len(body)) + body
    return bytes((first,)) + encode_varint(len(body)) + body


def _encode_connect(packet: Connect, version: int) -> bytes:
    if packet.protocol_version != version:
        raise ValueError(f"CONNECT for version {packet.protocol_version} encoded as {version}")
    will = packet.will
    flags = 0x02 if packet.clean_start else 0
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if packet.username is not None:
        flags |= 0x80
    if packet.password is not None:
        flags |= 0x40
    parts = [_PROTOCOL_NAMES[version], bytes((version, flags)), _pack_short(packet.keepalive)]
    if version == MQTT_5:
        parts.append(encode_properties(packet.properties, PacketType.CONNECT))
    parts.append(encode_utf8(packet.client_id))
    if will is not None:
        if version == MQTT_5:
            parts.append(encode_properties(will.properties, WILL))
        parts += (encode_utf8(will.topic), encode_binary(will.payload))
    if packet.username is not None:
        parts.append(encode_utf8(packet.username))
    if packet.password is not None:
        parts.append(encode_binary(packet.password))
    return _frame(0x10, b"".join(parts))


def _encode_connack(packet: ConnAck, version: int) -> bytes:
    body = bytes((0x01 if packet.session_present else 0, packet.reason_code))
    if version == MQTT_5:
        body += encode_properties(packet.properties, PacketType.CONNACK)
    return _frame(0x20, body)


def _ack_encoder(cls):
    """Encoder of PUBACK, PUBREC, PUBREL or PUBCOMP, in the shortest form v5 allows."""
    first = (cls.packet_type << 4) | _FIXED_FLAGS[cls.packet_type]

    def encode_ack(packet, version: int) -> bytes:
        body = _pack_short(packet.packet_id)
        if version == MQTT_5 and (packet.reason_code or packet.properties):
            body += bytes((packet.reason_code,))
            if packet.properties:
                body += encode_properties(packet.properties, cls.packet_type)
        return _frame(first, body)

    return encode_ack


def _encode_subscribe(packet: Subscribe, version: int) -> bytes:
    parts = [_pack_short(packet.packet_id)]
    if version == MQTT_5:
        parts.append(encode_properties(packet.properties, PacketType.SUBSCRIBE))
    for sub in packet.subscriptions:
        options = sub.qos
        if version == MQTT_5:
            options |= ((0x04 if sub.no_local else 0) | (0x08 if sub.retain_as_published else 0)
                        | (sub.retain_handling << 4))
        parts += (encode_utf8(sub.topic_filter), bytes((options,)))
    return _frame(0x82, b"".join(parts))


def _encode_suback(packet: SubAck, version: int) -> bytes:
    parts = [_pack_short(packet.packet_id)]
    if version == MQTT_5:
        parts.append(encode_properties(packet.properties, PacketType.SUBACK))
        parts.append(bytes(packet.reason_codes))
    else:
        # Before v5 every refusal is the one failure code 0x80.
        parts.append(bytes(code if code < 0x80 else 0x80 for code in packet.reason_codes))
    return _frame(0x90, b"".join(parts))


def _encode_unsubscribe(packet: Unsubscribe, version: int) -> bytes:
    parts = [_pack_short(packet.packet_id)]
    if version == MQTT_5:
        parts.append(encode_properties(packet.properties, PacketType.UNSUBSCRIBE))
    parts += (encode_utf8(topic_filter) for topic_filter in packet.topic_filters)
    return _frame(0xA2, b"".join(parts))


def _encode_unsuback(packet: UnsubAck, version: int) -> bytes:
    body = _pack_short(packet.packet_id)
    if version == MQTT_5:
        body += (encode_properties(packet.properties, PacketType.UNSUBACK)
                 + bytes(packet.reason_codes))
    return _frame(0xB0, body)


def _reason_encoder(cls):
    """Encoder of DISCONNECT or AUTH: empty before v5, and in v5 when it is a plain success."""
    first = cls.packet_type << 4

    def encode_reason(packet, version: int) -> bytes:
        if version < MQTT_5 or not (packet.reason_code or packet.properties):
            return bytes((first, 0))
        body = bytes((packet.reason_code,))
        if packet.properties:
            body += encode_properties(packet.properties, cls.packet_type)
        return _frame(first, body)

    return encode_reason


def _encode_auth(packet: Auth, version: int) -> bytes:
    if version < MQTT_5:
        raise ValueError("AUTH exists only in MQTT 5")
    return _encode_auth_v5(packet, version)


_encode_auth_v5 = _reason_encoder(Auth)

_ENCODERS = {
    Connect: _encode_connect,
    ConnAck: _encode_connack,
    Publish: _encode_publish,
    PubAck: _ack_encoder(PubAck),
    PubRec: _ack_encoder(PubRec),
    PubRel: _ack_encoder(PubRel),
    PubComp: _ack_encoder(PubComp),
    Subscribe: _encode_subscribe,
    SubAck: _encode_suback,
    Unsubscribe: _encode_unsubscribe,
    UnsubAck: _encode_unsuback,
    PingReq: lambda packet, version: b"\xc0\x00",
    PingResp: lambda packet, version: b"\xd0\x00",
    Disconnect: _reason_encoder(Disconnect),
    Auth: _encode_auth,
}
