"""Helpers shared by the codec tests: decode bytes the way a broker sees them."""

from __future__ import annotations

from appliance.mqtt import Connect, MqttDecoder, encode

CONNECT_BYTES = {version: encode(Connect("c", version, protocol_name="MQIsdp" if version == 3 else "MQTT"), version)
                 for version in (3, 4, 5)}


def decode_all(data: bytes, version: int | None = None, max_packet_size: int = 1 << 20) -> list:
    """Every packet in `data`; with `version`, the decoder is told it instead of reading CONNECT."""
    return MqttDecoder(max_packet_size, protocol_version=version).feed(data)


def decode_one(data: bytes, version: int | None = None):
    packets = decode_all(data, version)
    assert len(packets) == 1, packets
    return packets[0]


def after_connect(version: int, data: bytes) -> list:
    """The packets a server decodes from `data` sent after a plain CONNECT of `version`."""
    decoder = MqttDecoder()
    assert len(decoder.feed(CONNECT_BYTES[version])) == 1
    return decoder.feed(data)
