"""The broker in-process: `Broker` and real `Client`s over fake transports, driven with
bytes, no sockets, no subprocess (as h11's ConnectionPair drives two machines in memory).

A `Peer` is one MQTT client: what it sends is encoded by the project's codec and fed to
its `Client` as a socket read would be; questions are answered by the real `Gate` (over
a real AccessControl when the test gives an auth config); what the broker writes piles
up in the peer's transport until the peer reads it, so a peer that does not read is a
subscriber whose socket is full. Timers run when the test says (`hub.run_timers`).
"""

from __future__ import annotations

import time

from appliance.broker import Broker
from appliance.broker.client import Client, ClientSettings
from appliance.broker.durability import barrier
from appliance.broker.hooks import BrokerHooks
from appliance.broker.stats import BrokerStats
from appliance.broker.timers import Timers
from appliance.config.model import LimitsConfig, MqttConfig
from appliance.listeners.gate import Gate
from appliance.mqtt.codec import MqttDecoder, encode
from appliance.mqtt.packets import (
    Connect, Disconnect, PingReq, PubAck, PubComp, Publish, PubRec, PubRel, Subscribe, Subscription,
    Unsubscribe, Will,
)


class FakeTransport:
    """A socket whose peer reads only when told: `write` piles bytes up, `take` reads them."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.queued: list[bytes] = []
        self.pending_bytes = 0
        self.closing = False
        self.client: Client | None = None
        self._wanting_room = False
        self.pauses = 0
        self.on_pause = None
        self.held = False  # hold_output(): the peer reads nothing until the callback

    def write(self, data: bytes, tail: bytes | None = None) -> None:
        if self.closing:
            return
        for part in (data, tail) if tail is not None else (data,):
            self.queued.append(bytes(part))
            self.pending_bytes += len(part)

    def has_room(self) -> bool:
        if self.pending_bytes < self.budget:
            return True
        self._wanting_room = True
        return False

    def close(self) -> None:
        self.closing = True

    def pause(self) -> None:
        """Where the real transport lets other connections run: counted, and `on_pause`
        (if a test set it) plays what they do meanwhile."""
        self.pauses += 1
        if self.on_pause is not None:
            self.on_pause()

    def hold_output(self, until) -> None:
        self.held = True
        until(self._release_output)

    def _release_output(self) -> None:
        self.held = False

    def take(self) -> bytes:
        if self.held:
            return b""
        data = b"".join(self.queued)
        self.queued.clear()
        self.pending_bytes = 0
        if self._wanting_room and not self.closing:
            self._wanting_room = False
            self.client.outbox_drained()
        return data


class Hub:
    """One broker and the peers connected to it."""

    def __init__(self, mqtt: MqttConfig | None = None, limits: LimitsConfig | None = None, access=None,
                 durables: list | None = None, budget: int = 4 * 1024 * 1024) -> None:
        self.mqtt = mqtt or MqttConfig()
        self.limits = limits or LimitsConfig()
        self.stats = BrokerStats()
        self.timers = Timers()
        self.broker = Broker(self.mqtt, self.limits, self.stats, self.timers)
        self.broker.start()
        self.gate = Gate(access)
        self.settings = ClientSettings(self.mqtt, self.limits, authenticates=access is not None,
                                       disconnect_on_deny=access is not None and access.disconnect_on_deny,
                                       barrier=barrier(durables or []))
        self.budget = budget
        self.events = Recorder()
        self.broker.add_hooks(self.events)
        self._ports = iter(range(40000, 60000))

    def peer(self, client_id: str = "", version: int = 4, connect: bool = True, **connect_args) -> Peer:
        peer = Peer(self, client_id, version)
        if connect:
            ack = peer.connect(**connect_args)
            assert ack.reason_code == 0, ack
        return peer

    def client(self, transport: FakeTransport) -> Client:
        client = Client(self.broker, transport, self.settings, self.stats, ("127.0.0.1", next(self._ports)))
        transport.client = client
        return client

    def run_timers(self, after: float = 0.0) -> int:
        """Run what the timers would have run `after` seconds from now."""
        return self.timers.sweep(time.monotonic() + after)

    def shut_down(self, peers) -> None:
        """What app.py does at stop: wills first, then every connection told 0x8B."""
        self.broker.shut_down()
        for peer in peers:
            peer.client.shut_down()


class Recorder(BrokerHooks):
    def __init__(self) -> None:
        self.connacks: list = []
        self.disconnects: list = []
        self.published: list = []

    def on_client_connack(self, client, reason_code):
        self.connacks.append((client.client_id, reason_code))

    def on_client_disconnected(self, client, reason):
        self.disconnects.append((client.client_id, reason))

    def on_message_publish(self, client, message):
        self.published.append(message)


class Peer:
    """One MQTT client talking to the hub's broker in memory."""

    def __init__(self, hub: Hub, client_id: str, version: int) -> None:
        self.hub = hub
        self.client_id = client_id
        self.version = version
        self.transport = FakeTransport(hub.budget)
        self.client = hub.client(self.transport)
        self.decoder = MqttDecoder(1 << 28, protocol_version=version)
        self.received: list = []
        self._packet_id = 0

    # -- sending ---------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        question = self.client.receive_data(data)
        while question is not None:
            question = self.client.answer(self.hub.gate.answer(question))

    def send(self, *packets) -> None:
        self.send_bytes(b"".join(encode(p, self.version) for p in packets))

    def connect(self, clean: bool = True, will: Will | None = None, keepalive: int = 60,
                username: str | None = None, password: bytes | None = None, properties: dict | None = None):
        self.send(Connect(self.client_id, self.version, clean, keepalive, username, password, will,
                          properties or {}, "MQIsdp" if self.version == 3 else "MQTT"))
        return self.expect("ConnAck")

    def next_id(self) -> int:
        self._packet_id = self._packet_id % 0xFFFF + 1
        return self._packet_id

    def subscribe(self, topic_filter: str, qos: int = 0, properties: dict | None = None, **options) -> list[int]:
        self.send(Subscribe(self.next_id(), [Subscription(topic_filter, qos, **options)], properties or {}))
        return self.expect("SubAck").reason_codes

    def unsubscribe(self, topic_filter: str) -> list[int]:
        self.send(Unsubscribe(self.next_id(), [topic_filter]))
        return self.expect("UnsubAck").reason_codes

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0, retain: bool = False,
                properties: dict | None = None, packet_id: int | None = None, dup: bool = False):
        """Publish; at QoS 1 return the PUBACK's reason code, at QoS 2 complete the
        exchange and return the PUBREC's (unless `packet_id` is given: then only send)."""
        payload = payload.encode() if isinstance(payload, str) else payload
        explicit = packet_id is not None
        if qos and packet_id is None:
            packet_id = self.next_id()
        self.send(Publish(topic, payload, qos, retain, dup, packet_id if qos else None, properties or {}))
        if explicit or not qos:
            return None
        if qos == 1:
            return self.expect("PubAck").reason_code
        code = self.expect("PubRec").reason_code
        if code < 0x80:
            self.send(PubRel(packet_id))
            self.expect("PubComp")
        return code

    def disconnect(self, reason_code: int = 0, properties: dict | None = None) -> None:
        self.send(Disconnect(reason_code, properties or {}))
        self.drop()

    def drop(self) -> None:
        """The socket is gone without a DISCONNECT."""
        self.client.connection_lost("tcp_closed")

    # -- receiving -------------------------------------------------------------------

    def read(self) -> list:
        """Everything the broker wrote since the last read (the socket drains)."""
        while True:
            data = self.transport.take()
            if not data:
                break
            self.received.extend(self.decoder.feed(data))
        packets, self.received = self.received, []
        return packets

    def next_packet(self):
        if not self.received:
            self.received = self.read()
        assert self.received, "nothing received"
        return self.received.pop(0)

    def expect(self, kind: str):
        packet = self.next_packet()
        assert type(packet).__name__ == kind, f"expected {kind}, got {packet}"
        return packet

    def messages(self, ack: bool = True) -> list[Publish]:
        """The PUBLISHes received so far (acknowledged unless `ack` is False)."""
        packets = self.read()
        out = []
        for packet in packets:
            if isinstance(packet, Publish):
                out.append(packet)
                if ack and packet.qos == 1:
                    self.send(PubAck(packet.packet_id))
                elif ack and packet.qos == 2:
                    self.send(PubRec(packet.packet_id))
            elif isinstance(packet, PubRel) and ack:
                self.send(PubComp(packet.packet_id))
            else:
                self.received.append(packet)
        if ack and any(isinstance(p, PubRel) for p in self.received):
            rest, self.received = self.received, []
            for packet in rest:
                if isinstance(packet, PubRel):
                    self.send(PubComp(packet.packet_id))
                else:
                    self.received.append(packet)
        return out

    def expect_message(self, ack: bool = True) -> Publish:
        messages = self.messages(ack)
        assert len(messages) == 1, f"expected one message, got {messages}"
        return messages[0]

    def expect_no_message(self) -> None:
        assert self.messages() == []

    def roundtrip(self) -> None:
        """PINGREQ/PINGRESP; whatever else came is kept for the next read."""
        self.send(PingReq())
        packets = self.read()
        kinds = [type(p).__name__ for p in packets]
        assert "PingResp" in kinds, kinds
        del packets[kinds.index("PingResp")]
        self.received = packets

    @property
    def closed(self) -> bool:
        return self.transport.closing
