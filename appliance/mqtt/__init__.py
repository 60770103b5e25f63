"""Sans-I/O MQTT 3.1 / 3.1.1 / 5.0 codec: bytes in, packet objects out, and back."""

from .codec import MqttDecoder, encode, publish_parts
from .errors import MalformedPacket, MqttError, PacketTooLarge, ProtocolError, UnsupportedProtocolVersion
from .packets import (
    MQTT_3_1, MQTT_3_1_1, MQTT_5, Auth, ConnAck, Connect, Disconnect, Packet, PacketType, PingReq,
    PingResp, PubAck, PubComp, Publish, PubRec, PubRel, SubAck, Subscribe, Subscription, UnsubAck,
    Unsubscribe, Will,
)
from .properties import PROPERTIES, PROPERTIES_BY_NAME, Property

__all__ = [
    "MqttDecoder", "encode", "publish_parts",
    "MqttError", "MalformedPacket", "ProtocolError", "PacketTooLarge", "UnsupportedProtocolVersion",
    "MQTT_3_1", "MQTT_3_1_1", "MQTT_5", "Packet", "PacketType",
    "Connect", "ConnAck", "Publish", "PubAck", "PubRec", "PubRel", "PubComp", "Subscribe", "SubAck",
    "Unsubscribe", "UnsubAck", "PingReq", "PingResp", "Disconnect", "Auth", "Subscription", "Will",
    "PROPERTIES", "PROPERTIES_BY_NAME", "Property",
]
