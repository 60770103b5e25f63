"""MQTT control packets as plain objects: what the codec decodes to and encodes from.

One class per packet type, shared by MQTT 3.1, 3.1.1 and 5.0. Fields that a protocol
version does not carry (reason codes, properties before v5) keep their defaults and are
ignored by the encoder for that version.

Properties are a dict keyed by the property's name as it appears in
`appliance.mqtt.properties.PROPERTIES` (e.g. ``"session_expiry_interval"``). Properties
that may appear more than once hold a list: ``"user_property"`` is a list of
``(name, value)`` string pairs, ``"subscription_identifier"`` a list of ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


MQTT_3_1 = 3
MQTT_3_1_1 = 4
MQTT_5 = 5


@dataclass(slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: dict = field(default_factory=dict)


@dataclass(slots=True)
class Connect:
    client_id: str = ""
    protocol_version: int = MQTT_3_1_1
    clean_start: bool = True
    keepalive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: dict = field(default_factory=dict)
    # "MQIsdp" for 3.1, "MQTT" for 3.1.1 and 5.0; the encoder derives it from the version.
    protocol_name: str = "MQTT"

    packet_type = PacketType.CONNECT


@dataclass(slots=True)
class ConnAck:
    reason_code: int = 0  # v3/v4: the CONNACK return code (0-5); v5: the reason code
    session_present: bool = False
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.CONNACK


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None  # present exactly when qos > 0
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.PUBLISH


@dataclass(slots=True)
class PubAck:
    packet_id: int
    reason_code: int = 0
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.PUBACK


@dataclass(slots=True)
class PubRec:
    packet_id: int
    reason_code: int = 0
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.PUBREC


@dataclass(slots=True)
class PubRel:
    packet_id: int
    reason_code: int = 0
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.PUBREL


@dataclass(slots=True)
class PubComp:
    packet_id: int
    reason_code: int = 0
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.PUBCOMP


@dataclass(slots=True)
class Subscription:
    topic_filter: str
    qos: int = 0
    no_local: bool = False  # v5 subscription options
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(slots=True)
class Subscribe:
    packet_id: int
    subscriptions: list[Subscription]
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.SUBSCRIBE


@dataclass(slots=True)
class SubAck:
    packet_id: int
    reason_codes: list[int]  # granted QoS (0-2) or a failure code (0x80 and, in v5, others)
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.SUBACK


@dataclass(slots=True)
class Unsubscribe:
    packet_id: int
    topic_filters: list[str]
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.UNSUBSCRIBE


@dataclass(slots=True)
class UnsubAck:
    packet_id: int
    reason_codes: list[int] = field(default_factory=list)  # v5 only; v3/v4 carry none
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.UNSUBACK


@dataclass(slots=True)
class PingReq:
    packet_type = PacketType.PINGREQ


@dataclass(slots=True)
class PingResp:
    packet_type = PacketType.PINGRESP


@dataclass(slots=True)
class Disconnect:
    reason_code: int = 0
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.DISCONNECT


@dataclass(slots=True)
class Auth:
    reason_code: int = 0
    properties: dict = field(default_factory=dict)

    packet_type = PacketType.AUTH


Packet = (
    Connect | ConnAck | Publish | PubAck | PubRec | PubRel | PubComp | Subscribe | SubAck
    | Unsubscribe | UnsubAck | PingReq | PingResp | Disconnect | Auth
)
