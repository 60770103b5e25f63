"""The client side of one connection to the upstream, without I/O: packets in, packets out.

`UpstreamSession` owns the MQTT state of one connection: packet identifiers, the inflight
window of forwarded QoS 1/2 messages, inbound QoS 2 waiting for PUBREL. The link (link.py)
feeds it decoded packets and writes what it returns. A new connection gets a new session;
what survives a reconnect lives in the send queue, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.bridges import BridgeConfig
from ..mqtt import (
    MQTT_5, ConnAck, Connect, Disconnect, PingReq, PingResp, PubAck, PubComp, Publish, PubRec, PubRel,
    SubAck, Subscribe, Subscription, UnsubAck, Will,
)
from .queue import Outgoing

DEFAULT_WINDOW = 1024  # forwarded QoS 1/2 messages unacknowledged at once when the upstream sets no limit

CONNACK_REASONS = {
    1: "unacceptable protocol version", 2: "client identifier rejected", 3: "server unavailable",
    4: "bad user name or password", 5: "not authorized",
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x83: "implementation specific error", 0x84: "unsupported protocol version",
    0x85: "client identifier not valid", 0x86: "bad user name or password", 0x87: "not authorized",
    0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned", 0x8C: "bad authentication method",
    0x90: "topic name invalid", 0x95: "packet too large", 0x97: "quota exceeded",
    0x99: "payload format invalid", 0x9A: "retain not supported", 0x9B: "QoS not supported",
    0x9C: "use another server", 0x9D: "server moved", 0x9F: "connection rate exceeded",
    0x8B: "server shutting down", 0x8E: "session taken over", 0x8D: "keep alive timeout",
    0x98: "administrative action", 0x00: "normal disconnection",
}


def reason_text(code: int) -> str:
    return f"{CONNACK_REASONS.get(code, 'reason')} (0x{code:02X})"


@dataclass(frozen=True, slots=True)
class Incoming:
    """A PUBLISH from the upstream, to be remapped and routed locally."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: dict


class Refused(Exception):
    """The upstream refused CONNECT; the message names the reason."""


class UpstreamSession:
    """MQTT client state of one connection. Every method returns packets to send."""

    def __init__(self, config: BridgeConfig, receive_limit: int) -> None:
        self.config = config
        # The largest packet taken from the upstream (bytes): announced in a v5 CONNECT so the
        # upstream drops bigger messages instead of sending them; the decoder enforces it.
        self.receive_limit = config.connect_properties.get("maximum_packet_size", receive_limit)
        self.version = config.proto_ver
        self.window = DEFAULT_WINDOW
        self.max_packet_size: int | None = None  # the upstream's limit (v5 CONNACK)
        self.maximum_qos = 2  # v5 CONNACK Maximum QoS: higher QoS is sent at this one
        self.retain_available = True  # v5 CONNACK Retain Available: if not, never set RETAIN
        self.session_present = False
        self._next_id = 0
        # packet id -> [entry, sent_at (monotonic), released (PUBREC seen)]
        self.inflight: dict[int, list] = {}
        self._awaiting_release: set[int] = set()  # inbound QoS 2 delivered, PUBREL not yet seen
        self._subscribe_id: int | None = None

    # -- connecting --------------------------------------------------------------------

    def connect_packet(self) -> Connect:
        config = self.config
        properties = dict(config.connect_properties) if self.version == MQTT_5 else {}
        if self.version == MQTT_5:
            properties.setdefault("receive_maximum", min(config.max_recv_queue_len, 65535))
            properties.setdefault("maximum_packet_size", self.receive_limit)
        will = None
        if config.will is not None:
            will = Will(config.will.topic, config.will.payload, config.will.qos, config.will.retain,
                        dict(config.will.properties) if self.version == MQTT_5 else {})
        return Connect(
            client_id=config.clientid, protocol_version=self.version, clean_start=config.clean_start,
            keepalive=int(config.keepalive), username=config.username,
            password=config.password.encode() if config.password is not None else None,
            will=will, properties=properties, protocol_name="MQIsdp" if self.version == 3 else "MQTT",
        )

    def on_connack(self, packet) -> None:
        """Raises Refused unless `packet` is a successful CONNACK."""
        if not isinstance(packet, ConnAck):
            raise Refused(f"expected CONNACK, got {type(packet).__name__}")
        if packet.reason_code != 0:
            detail = packet.properties.get("reason_string")
            raise Refused(reason_text(packet.reason_code) + (f": {detail}" if detail else ""))
        self.session_present = packet.session_present
        receive_maximum = packet.properties.get("receive_maximum")
        if receive_maximum:
            self.window = min(receive_maximum, DEFAULT_WINDOW)
        self.max_packet_size = packet.properties.get("maximum_packet_size")
        self.maximum_qos = packet.properties.get("maximum_qos", 2)
        self.retain_available = bool(packet.properties.get("retain_available", 1))

    def subscribe_packet(self) -> Subscribe | None:
        subscriptions = self.config.subscription
        if not subscriptions:
            return None
        v5 = self.version == MQTT_5
        self._subscribe_id = self._allocate_id()
        return Subscribe(
            packet_id=self._subscribe_id,
            subscriptions=[
                # No Local: the upstream must not send back what this bridge published there.
                Subscription(s.remote_topic, s.qos, no_local=v5, retain_as_published=v5 and s.retain_as_published,
                             retain_handling=s.retain_handling if v5 else 0)
                for s in subscriptions
            ],
            properties=dict(self.config.subscription_properties) if v5 else {},
        )

    # -- forwarding ----------------------------------------------------------------------

    def can_send(self) -> bool:
        return len(self.inflight) < self.window

    def publish_packet(self, entry: Outgoing, now: float) -> Publish:
        # What the upstream cannot take is adjusted once, in the entry, so a replay matches.
        if entry.qos > self.maximum_qos:
            entry.qos = self.maximum_qos
        if entry.retain and not self.retain_available:
            entry.retain = False
        packet_id = None
        if entry.qos:
            packet_id = self._allocate_id()
            self.inflight[packet_id] = [entry, now, False]
        dup = entry.sent_once and entry.qos > 0  # DUP is never set at QoS 0
        packet = Publish(entry.topic, entry.payload, entry.qos, entry.retain, dup, packet_id,
                         entry.properties if self.version == MQTT_5 else {})
        entry.sent_once = True
        return packet

    def too_large(self, entry: Outgoing) -> bool:
        # A PUBLISH is at least its topic, payload and a few header bytes.
        limit = self.max_packet_size
        return limit is not None and len(entry.topic) + len(entry.payload) + 7 > limit

    def due_for_resend(self, now: float, wait: float) -> list[Publish]:
        """v3/v4 only (MQTT 5 forbids resending on a live connection): PUBLISH again, with DUP,
        what has waited longer than `wait` for its PUBACK/PUBREC; PUBREL again after PUBREC."""
        if self.version == MQTT_5:
            return []
        packets = []
        for packet_id, record in self.inflight.items():
            entry, sent_at, released = record
            if now - sent_at < wait:
                continue
            record[1] = now
            if released:
                packets.append(PubRel(packet_id))
            else:
                packets.append(Publish(entry.topic, entry.payload, entry.qos, entry.retain, True, packet_id))
        return packets

    # -- inbound packets -----------------------------------------------------------------

    def on_packet(self, packet, now: float) -> tuple[list, Incoming | None, tuple | None, str | None]:
        """(packets to send, a message for the local broker, (entry, rtt, refused_code) of a
        finished forward, a problem to log)."""
        kind = type(packet)
        if kind is Publish:
            return self._on_publish(packet)
        if kind is PubAck or kind is PubComp:
            record = self.inflight.pop(packet.packet_id, None)
            if record is None:
                return [], None, None, None
            refused = packet.reason_code if packet.reason_code >= 0x80 else None
            return [], None, (record[0], now - record[1], refused), None
        if kind is PubRec:
            record = self.inflight.get(packet.packet_id)
            if record is None:
                return [PubRel(packet.packet_id, 0x92 if self.version == MQTT_5 else 0)], None, None, None
            if packet.reason_code >= 0x80:
                del self.inflight[packet.packet_id]
                return [], None, (record[0], now - record[1], packet.reason_code), None
            record[2] = True
            return [PubRel(packet.packet_id)], None, None, None
        if kind is PubRel:
            self._awaiting_release.discard(packet.packet_id)
            return [PubComp(packet.packet_id)], None, None, None
        if kind is SubAck:
            return [], None, None, self._suback_problem(packet)
        if kind is PingResp or kind is UnsubAck:
            return [], None, None, None
        if kind is Disconnect:
            detail = packet.properties.get("reason_string")
            return [], None, None, "upstream sent DISCONNECT: " + reason_text(packet.reason_code) + (
                f": {detail}" if detail else "")
        return [], None, None, f"unexpected {kind.__name__} from the upstream"

    def _on_publish(self, packet: Publish):
        properties = packet.properties
        if properties:
            properties = {k: v for k, v in properties.items()
                          if k not in ("topic_alias", "subscription_identifier")}
        incoming = Incoming(packet.topic, packet.payload, packet.qos, packet.retain, properties)
        if packet.qos == 0:
            return [], incoming, None, None
        if packet.qos == 1:
            return [PubAck(packet.packet_id)], incoming, None, None
        if packet.packet_id in self._awaiting_release:  # a resend of one already routed
            return [PubRec(packet.packet_id)], None, None, None
        self._awaiting_release.add(packet.packet_id)
        return [PubRec(packet.packet_id)], incoming, None, None

    def _suback_problem(self, packet: SubAck) -> str | None:
        refused = [
            f"{s.remote_topic} ({reason_text(code) if code != 0x80 or self.version == MQTT_5 else 'failure'})"
            for s, code in zip(self.config.subscription, packet.reason_codes) if code >= 0x80
        ]
        return f"upstream refused subscription {', '.join(refused)}" if refused else None

    def ping_packet(self) -> PingReq:
        return PingReq()

    def _allocate_id(self) -> int:
        # Skip identifiers still in use by an unacknowledged message.
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self.inflight and self._next_id != self._subscribe_id:
                return self._next_id
        raise RuntimeError("no free packet identifier")  # cannot happen: the window is far below 65535

