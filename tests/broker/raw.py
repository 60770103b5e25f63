"""A byte-level MQTT client built on the project's codec, for what paho cannot do on purpose
(resend a QoS 2 PUBLISH, hold acknowledgements, announce odd limits, send garbage)."""

from __future__ import annotations

import socket

from appliance.mqtt.codec import MqttDecoder, encode
from appliance.mqtt.packets import Connect, PingReq, Publish, PubRel, Subscribe, Subscription

from tests.conftest import TIMEOUT


class RawClient:
    def __init__(self, port: int, client_id: str, version: int = 4, properties: dict | None = None,
                 connect: bool = True) -> None:
        self.version = version
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.decoder = MqttDecoder(1 << 28, protocol_version=version)
        self.received: list = []
        self._packet_id = 0
        if connect:
            self.send(Connect(client_id, version, properties=properties or {}))
            assert self.expect("ConnAck").reason_code == 0

    def send(self, packet) -> None:
        self.sock.sendall(encode(packet, self.version))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next_packet(self):
        while not self.received:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the broker")
            self.received.extend(self.decoder.feed(data))
        return self.received.pop(0)

    def expect(self, kind: str):
        packet = self.next_packet()
        assert type(packet).__name__ == kind, f"expected {kind}, got {packet}"
        return packet

    def expect_closed(self) -> bytes:
        """Read until the broker closes; return what it sent first (e.g. a DISCONNECT)."""
        data = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            data += chunk

    def subscribe(self, topic_filter: str, qos: int = 0) -> list[int]:
        self._packet_id += 1
        self.send(Subscribe(self._packet_id, [Subscription(topic_filter, qos)]))
        return self.expect("SubAck").reason_codes

    def publish(self, topic: str, payload: bytes, qos: int = 0, packet_id: int | None = None,
                dup: bool = False, properties: dict | None = None) -> None:
        self.send(Publish(topic, payload, qos, False, dup, packet_id, properties or {}))

    def send_pubrel(self, packet_id: int) -> None:
        self.send(PubRel(packet_id))

    def roundtrip(self) -> None:
        """PINGREQ/PINGRESP: everything sent before has been handled."""
        self.send(PingReq())
        self.expect("PingResp")
