"""A byte-level MQTT client for what paho hides: not acknowledging, reading DUP flags and
packet ids, resending a QoS 2 PUBLISH. Packets are encoded with the project's codec (its
own tests check it against the spec's vectors) and sent over a real socket."""

from __future__ import annotations

import socket

from appliance.mqtt.codec import MqttDecoder, encode
from appliance.mqtt.packets import Connect, PubAck, Publish, PubRel, Subscribe, Subscription

from tests.conftest import TIMEOUT


class RawClient:
    def __init__(self, port: int, client_id: str, clean: bool = False, version: int = 4,
                 properties: dict | None = None) -> None:
        self.version = version
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.decoder = MqttDecoder(protocol_version=version)
        self.received: list = []
        self.send(Connect(client_id=client_id, protocol_version=version, clean_start=clean, keepalive=60,
                          properties=properties or {}))
        self.connack = self.next()

    def send(self, packet) -> None:
        self.sock.sendall(encode(packet, self.version))

    def next(self):
        while not self.received:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the broker closed the connection")
            self.received += self.decoder.feed(data)
        return self.received.pop(0)

    def subscribe(self, topic_filter: str, qos: int, packet_id: int = 1):
        self.send(Subscribe(packet_id, [Subscription(topic_filter, qos)]))
        return self.next()

    def publish(self, topic: str, payload: bytes, qos: int, packet_id: int, dup: bool = False):
        self.send(Publish(topic, payload, qos, False, dup, packet_id))
        return self.next()

    def puback(self, packet_id: int) -> None:
        self.send(PubAck(packet_id))

    def pubrel(self, packet_id: int):
        self.send(PubRel(packet_id))
        return self.next()

    def close(self) -> None:
        self.sock.close()
