"""Errors the codec raises, typed by what went wrong and carrying the MQTT 5 reason code
the broker answers with (in a v5 DISCONNECT or CONNACK) before it closes the connection."""

from __future__ import annotations

from . import reason_codes as rc


class MqttError(Exception):
    """The peer broke the protocol; close its connection after answering with `reason_code`."""

    reason_code = rc.UNSPECIFIED_ERROR
    # The packets that `MqttDecoder.feed` decoded from the same data before this error: they
    # were valid and may still be handled before the connection closes.
    packets: list = []


class MalformedPacket(MqttError):
    """The bytes cannot be a valid packet (bad lengths, bad UTF-8, reserved bits set...)."""

    reason_code = rc.MALFORMED_PACKET


class ProtocolError(MqttError):
    """A well-formed packet that the protocol forbids here (duplicate property, packet id 0...)."""

    reason_code = rc.PROTOCOL_ERROR


class PacketTooLarge(MqttError):
    """The fixed header announces more than the configured maximum packet size."""

    reason_code = rc.PACKET_TOO_LARGE


class UnsupportedProtocolVersion(MqttError):
    """CONNECT names a protocol level we do not speak; answer CONNACK 0x01 / 0x84."""

    reason_code = rc.UNSUPPORTED_PROTOCOL_VERSION

    def __init__(self, message: str, protocol_name: str, protocol_level: int):
        super().__init__(message)
        self.protocol_name = protocol_name  # as the CONNECT said them
        self.protocol_level = protocol_level
