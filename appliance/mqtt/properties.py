"""MQTT 5 properties (MQTT 5.0 section 2.2.2): the table of every property, and the reader and
writer of a property block as a dict keyed by the property's snake_case name."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .datatypes import (
    encode_binary, encode_utf8, encode_varint, read_binary, read_four_byte, read_two_byte,
    read_utf8, read_varint,
)
from .errors import MalformedPacket, ProtocolError
from .packets import PacketType as T

# Will properties live in CONNECT's payload, not in a packet of their own; 0 is a reserved
# packet type, so it can name them in `Property.packets`.
WILL = 0

BYTE = "byte"
TWO_BYTE = "two_byte_integer"
FOUR_BYTE = "four_byte_integer"
VARINT = "variable_byte_integer"
UTF8 = "utf8_string"
UTF8_PAIR = "utf8_string_pair"
BINARY = "binary_data"

_BOOLEAN = range(2)
_NON_ZERO = range(1, 1 << 32)
_ALL_WITH_PROPERTIES = frozenset(
    (T.CONNECT, T.CONNACK, T.PUBLISH, WILL, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBSCRIBE,
     T.SUBACK, T.UNSUBSCRIBE, T.UNSUBACK, T.DISCONNECT, T.AUTH))


@dataclass(frozen=True, slots=True)
class Property:
    identifier: int
    name: str
    kind: str
    packets: frozenset  # packet types (or WILL) it may appear in
    # Packet types where it may appear more than once; such a property's value is a list.
    repeatable_in: frozenset = frozenset()
    valid: range | None = None  # values outside are a Protocol Error

    @property
    def is_list(self) -> bool:
        return bool(self.repeatable_in)


def _p(identifier, name, kind, packets, repeatable_in=(), valid=None) -> Property:
    return Property(identifier, name, kind, frozenset(packets), frozenset(repeatable_in), valid)


PROPERTIES: dict[int, Property] = {p.identifier: p for p in (
    _p(0x01, "payload_format_indicator", BYTE, (T.PUBLISH, WILL), valid=_BOOLEAN),
    _p(0x02, "message_expiry_interval", FOUR_BYTE, (T.PUBLISH, WILL)),
    _p(0x03, "content_type", UTF8, (T.PUBLISH, WILL)),
    _p(0x08, "response_topic", UTF8, (T.PUBLISH, WILL)),
    _p(0x09, "correlation_data", BINARY, (T.PUBLISH, WILL)),
    _p(0x0B, "subscription_identifier", VARINT, (T.PUBLISH, T.SUBSCRIBE),
       repeatable_in=(T.PUBLISH,), valid=range(1, 268_435_456)),
    _p(0x11, "session_expiry_interval", FOUR_BYTE, (T.CONNECT, T.CONNACK, T.DISCONNECT)),
    _p(0x12, "assigned_client_identifier", UTF8, (T.CONNACK,)),
    _p(0x13, "server_keep_alive", TWO_BYTE, (T.CONNACK,)),
    _p(0x15, "authentication_method", UTF8, (T.CONNECT, T.CONNACK, T.AUTH)),
    _p(0x16, "authentication_data", BINARY, (T.CONNECT, T.CONNACK, T.AUTH)),
    _p(0x17, "request_problem_information", BYTE, (T.CONNECT,), valid=_BOOLEAN),
    _p(0x18, "will_delay_interval", FOUR_BYTE, (WILL,)),
    _p(0x19, "request_response_information", BYTE, (T.CONNECT,), valid=_BOOLEAN),
    _p(0x1A, "response_information", UTF8, (T.CONNACK,)),
    _p(0x1C, "server_reference", UTF8, (T.CONNACK, T.DISCONNECT)),
    _p(0x1F, "reason_string", UTF8, (T.CONNACK, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBACK,
                                     T.UNSUBACK, T.DISCONNECT, T.AUTH)),
    _p(0x21, "receive_maximum", TWO_BYTE, (T.CONNECT, T.CONNACK), valid=_NON_ZERO),
    _p(0x22, "topic_alias_maximum", TWO_BYTE, (T.CONNECT, T.CONNACK)),
    _p(0x23, "topic_alias", TWO_BYTE, (T.PUBLISH,)),
    _p(0x24, "maximum_qos", BYTE, (T.CONNACK,), valid=_BOOLEAN),
    _p(0x25, "retain_available", BYTE, (T.CONNACK,), valid=_BOOLEAN),
    _p(0x26, "user_property", UTF8_PAIR, _ALL_WITH_PROPERTIES, repeatable_in=_ALL_WITH_PROPERTIES),
    _p(0x27, "maximum_packet_size", FOUR_BYTE, (T.CONNECT, T.CONNACK), valid=_NON_ZERO),
    _p(0x28, "wildcard_subscription_available", BYTE, (T.CONNACK,), valid=_BOOLEAN),
    _p(0x29, "subscription_identifier_available", BYTE, (T.CONNACK,), valid=_BOOLEAN),
    _p(0x2A, "shared_subscription_available", BYTE, (T.CONNACK,), valid=_BOOLEAN),
)}

PROPERTIES_BY_NAME: dict[str, Property] = {p.name: p for p in PROPERTIES.values()}


def read_properties(data: bytes, pos: int, end: int, packet_type: int) -> tuple[dict, int]:
    """Read a property block (length, then properties) that must end by `end`.

    An identifier unknown or not allowed in this packet, or a value overrunning the block, is a
    Malformed Packet (MQTT 5.0 2.2.2.2); a repeated single-valued property or a value out of its
    range is a Protocol Error.
    """
    length, pos = read_varint(data, pos, end)
    stop = pos + length
    if stop > end:
        raise MalformedPacket("property length overruns the packet")
    properties: dict = {}
    while pos < stop:
        identifier, pos = read_varint(data, pos, stop)
        prop = PROPERTIES.get(identifier)
        if prop is None:
            raise MalformedPacket(f"unknown property identifier 0x{identifier:02X}")
        if packet_type not in prop.packets:
            raise MalformedPacket(f"property {prop.name} is not allowed in this packet")
        kind = prop.kind
        if kind is BYTE:
            if pos >= stop:
                raise MalformedPacket("truncated byte property")
            value = data[pos]
            pos += 1
        elif kind is TWO_BYTE:
            value, pos = read_two_byte(data, pos, stop)
        elif kind is FOUR_BYTE:
            value, pos = read_four_byte(data, pos, stop)
        elif kind is VARINT:
            value, pos = read_varint(data, pos, stop)
        elif kind is UTF8:
            value, pos = read_utf8(data, pos, stop)
        elif kind is BINARY:
            value, pos = read_binary(data, pos, stop)
        else:
            key, pos = read_utf8(data, pos, stop)
            value, pos = read_utf8(data, pos, stop)
            value = (key, value)
        if prop.valid is not None and value not in prop.valid:
            raise ProtocolError(f"property {prop.name} has the invalid value {value}")
        name = prop.name
        if name in properties:
            if packet_type not in prop.repeatable_in:
                raise ProtocolError(f"property {name} appears more than once")
            properties[name].append(value)
        else:
            properties[name] = [value] if prop.repeatable_in else value
    return properties, stop


def encode_properties(properties: dict, packet_type: int) -> bytes:
    """The property block for `properties` (length prefix included)."""
    if not properties:
        return b"\x00"
    parts = []
    for name, value in properties.items():
        prop = PROPERTIES_BY_NAME.get(name)
        if prop is None or packet_type not in prop.packets:
            raise ValueError(f"property {name!r} is not allowed in packet type {packet_type}")
        if prop.repeatable_in:
            if len(value) > 1 and packet_type not in prop.repeatable_in:
                raise ValueError(f"property {name!r} may appear only once in packet type {packet_type}")
            parts.extend(_encode_value(prop, item) for item in value)
        else:
            parts.append(_encode_value(prop, value))
    block = b"".join(parts)
    return encode_varint(len(block)) + block


def _encode_value(prop: Property, value) -> bytes:
    identifier = prop.identifier  # every identifier is below 0x80: a one-byte varint
    kind = prop.kind
    if kind is BYTE:
        return bytes((identifier, value))
    if kind is TWO_BYTE:
        return struct.pack("!BH", identifier, value)
    if kind is FOUR_BYTE:
        return struct.pack("!BI", identifier, value)
    if kind is VARINT:
        return bytes((identifier,)) + encode_varint(value)
    if kind is UTF8:
        return bytes((identifier,)) + encode_utf8(value)
    if kind is BINARY:
        return bytes((identifier,)) + encode_binary(value)
    key, val = value
    return bytes((identifier,)) + encode_utf8(key) + encode_utf8(val)
