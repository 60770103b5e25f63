"""One client connection's protocol: bytes in, decisions and bytes out, no I/O.

`Client` is fed the bytes a socket read (`receive_data`), decodes them and decides what
to answer; it writes through a `Transport` (`write` queues and never blocks, `has_room`
says whether the outbox is under its byte budget, `close` flushes then closes). When a
decision needs access control it does not ask it: `receive_data` returns a question
(`questions.py`) and the connection waits, in AUTHENTICATING for a CONNECT, until the
I/O shell hands the verdict to `answer`. Its state is `state.ConnectionState`: every
inbound packet is checked against it, and anything after CLOSING is dropped and counted.

What belongs to the connection lives here (version, negotiated limits, topic aliases,
the ACL, acknowledgements waiting for the durability barrier); what outlives it (QoS
state, subscriptions, the will) belongs to its `Session`, which it reaches only through
the session's methods. It is the session's `Link`: the session decides what to send, the
client encodes it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from collections.abc import Callable, Iterator
from typing import Protocol

from ..auth.acl import PUBLISH, SUBSCRIBE
from ..config.model import LimitsConfig, MqttConfig
from ..mqtt import reason_codes as rc
from ..mqtt.codec import MqttDecoder, encode, publish_parts
from ..mqtt.errors import MqttError
from ..mqtt.packets import (
    Auth, ConnAck, Connect, Disconnect, PingReq, PingResp, PubAck, PubComp, Publish, PubRec, PubRel,
    SubAck, Subscribe, UnsubAck, Unsubscribe,
)
from . import hooks as reasons
from .durability import Barrier
from .hooks import ClientInfo
from .message import Message
from .questions import Authenticate, Authorize, AuthVerdict, AwaitDurable, Question
from .session import ACKED, NEVER_EXPIRES, UNKNOWN, WRONG, Delivery, LastWill, Session, SubscriptionOptions
from .state import DROP, HOLD, INBOUND, ConnectionState, Event, State
from .stats import BrokerStats
from .topics import parse_shared, valid_topic_filter, valid_topic_name

log = logging.getLogger(__name__)

# Properties a publisher sets that travel with the message to subscribers.
_FORWARDED = ("payload_format_indicator", "content_type", "response_topic", "correlation_data", "user_property")
# A payload part longer than this is queued as its own chunk, shared by every subscriber
# (written with writev), instead of being copied into each subscriber's packet.
_SHARED_TAIL = 4096
_CONNECTED = State.CONNECTED
_INBOUND = tuple(INBOUND[s] for s in State)  # indexed by state: no enum hashing per packet
# Retained messages sent after a SUBSCRIBE between two pauses of the transport (other
# connections run meanwhile), so that a subscription matching many cannot stall them.
_RETAINED_BATCH = 64
# Properties a v5 packet of ours may lose to fit the client's Maximum Packet Size
# (MQTT 5.0 3.1.2.6: Reason String and User Property go first).
_OPTIONAL_PROPERTIES = ("reason_string", "user_property")


class Transport(Protocol):
    """The I/O side of one connection (`listeners.tcp.Connection`, or a test's fake)."""

    def write(self, data: bytes, tail: bytes | None = None) -> None:
        """Queue one packet for sending (`tail`: a payload part shared with other
        connections, queued as is); never blocks."""

    def has_room(self) -> bool:
        """Whether the queued bytes are under the outbox budget."""

    def close(self) -> None:
        """Send what is queued, then close."""

    def pause(self) -> None:
        """Let other connections run for a moment (long work, e.g. retained messages after
        a SUBSCRIBE, gives way); the client's state may have changed when it returns."""

    def hold_output(self, until: Callable[[Callable[[], None]], None]) -> None:
        """Go on queueing, but send nothing until `until` calls back."""


class Router(Protocol):
    """What a connection asks of the broker (`broker.Broker`)."""

    def refusal(self, client_id: str, owner: str | None, identified: bool) -> str | None: ...
    def attach(self, link, client_id: str, clean_start: bool, expiry_interval: int,
               will: LastWill | None, owner: str | None = None) -> tuple[Session, bool]: ...
    def detach(self, session: Session, link, reason: str = ...) -> None: ...
    def publish(self, message: Message, publisher: ClientInfo | None) -> int: ...
    def subscribe(self, session: Session, topic_filter: str, group: str | None, plain_filter: str,
                  options: SubscriptionOptions) -> bool: ...
    def unsubscribe(self, session: Session, topic_filter: str) -> bool: ...
    def retained_matching(self, topic_filter: str,
                          pause: Callable[[], None] | None = None) -> Iterator[Message]: ...
    def retained_count(self) -> int: ...
    def notify_connack(self, info: ClientInfo, reason_code: int) -> None: ...
    def notify_disconnected(self, info: ClientInfo, reason: str) -> None: ...
    def notify(self, event: str, *args) -> None:
        """An optional BrokerHooks event (on_client_connect, on_session_subscribed, ...)."""
    on_delivered: object  # a callable (info, message, qos, retain), or None when no hook wants it
    on_acked: object  # the same for on_message_acked


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What every connection of the appliance is configured with, built once by app.py."""

    mqtt: MqttConfig
    limits: LimitsConfig
    authenticates: bool = False  # an auth block exists: each CONNECT waits for a verdict
    disconnect_on_deny: bool = False  # auth.deny_action = disconnect
    barrier: Barrier | None = None  # acknowledgements wait for these Durables; None: sent at once


class Client:
    """Protocol decisions for one network connection, from CONNECT to close."""

    __slots__ = ("_router", "transport", "_stats", "peer", "cert_username", "facts", "_mqtt", "_settings",
                 "_state", "_decoder", "info", "_assigned_id", "protocol_version", "session", "acl",
                 "_may_receive", "keepalive_timeout", "send_window", "max_outgoing_size", "has_room",
                 "_aliases_in", "_aliases_out", "_alias_out_max", "_max_topic_length", "_max_topic_levels",
                 "_short_topic", "_barrier", "_acks_waiting", "_resume", "_held", "_failure", "superuser",
                 "_replaying")

    def __init__(self, router: Router, transport: Transport, settings: ClientSettings, stats: BrokerStats,
                 peer: tuple, cert_username: str | None = None, facts: dict | None = None) -> None:
        self._router = router
        self.transport = transport
        self._stats = stats
        self.peer = peer
        self.cert_username = cert_username
        self.facts = facts or {}
        mqtt, limits = settings.mqtt, settings.limits
        self._mqtt = mqtt
        self._settings = settings
        self._state = ConnectionState()
        self._decoder = MqttDecoder(mqtt.max_packet_size)
        self.info: ClientInfo | None = None
        self._assigned_id: str | None = None  # the client id we made up for an empty one
        self.protocol_version = 4
        self.session: Session | None = None
        self.acl = None  # a ClientAcl when an ACL applies to this client; None costs one check
        self.superuser = False  # authenticated as a superuser: no ACL, also after a reload
        self._may_receive = None  # the ACL's read check at delivery, when it has one
        self.keepalive_timeout: float | None = None  # seconds without a packet before closing
        self.send_window = mqtt.max_inflight_window  # v5: the client's Receive Maximum
        self.max_outgoing_size = mqtt.max_packet_size
        self.has_room = transport.has_room
        self._aliases_in: dict[int, str] = {}
        self._aliases_out: dict[str, int] = {}
        self._alias_out_max = 0
        self._max_topic_length = limits.max_topic_length
        self._max_topic_levels = limits.max_topic_levels
        # A topic no longer than this is within both limits (N levels take N - 1 slashes).
        self._short_topic = min(limits.max_topic_length, limits.max_topic_levels - 1)
        self._barrier = settings.barrier
        self._acks_waiting: deque | None = deque() if settings.barrier is not None else None
        self._resume = None  # (method, args) waiting for the answer to a question
        self._held: deque | None = None  # packets that came while a question was open
        self._failure: MqttError | None = None  # the decoder's error, after the held packets
        self._replaying = False  # sending retained messages after a SUBSCRIBE (see send_publish)

    @property
    def state(self) -> State:
        return self._state.state

    @property
    def closed(self) -> bool:
        """CLOSING or CLOSED: nothing the peer sends is handled any more."""
        return not self._state.open

    # -- input -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> Question | None:
        """Decode and handle what the socket read; a question for the shell, or None."""
        try:
            packets = self._decoder.feed(data)
            failure = None
        except MqttError as error:
            packets, failure = error.packets, error  # what came before the bad bytes still counts
        self._stats.packets_received += len(packets)
        if self._resume is not None or self._held:
            self._hold(packets)
            self._failure = self._failure or failure
            return None
        receive = self._receive
        for index, packet in enumerate(packets):
            question = receive(packet)
            if question is not None:
                self._hold(packets[index + 1:])
                self._failure = failure
                return question
        if failure is not None:
            self._decoder_failed(failure)
        return None

    def answer(self, verdict) -> Question | None:
        """The shell's verdict on the question `receive_data` (or `answer`) returned; goes
        on with what was held meanwhile and returns the next question, or None."""
        method, args = self._resume
        self._resume = None
        if self._state.open:
            question = method(self, verdict, *args)
            if question is not None:
                return question
        held = self._held
        receive = self._receive
        while held and self._resume is None:  # (None when nothing was held)
            question = receive(held.popleft())
            if question is not None:
                return question
        if self._resume is None and self._failure is not None:
            failure, self._failure = self._failure, None
            self._decoder_failed(failure)
        return None

    def _receive(self, packet) -> Question | None:
        state = self._state.state
        if state is not _CONNECTED:
            action = _INBOUND[state]
            if action is DROP:
                self._stats.packets_dropped_closing += 1
                return None
            if action is HOLD:
                self._hold((packet,))
                return None
        handler = self._handlers.get(type(packet))
        if handler is None:
            self.protocol_error(f"unexpected {type(packet).__name__}", rc.PROTOCOL_ERROR)
            return None
        return handler(self, packet)

    def _hold(self, packets) -> None:
        if self._held is None:
            self._held = deque()
        self._held.extend(packets)

    def _ask(self, question: Question, method, *args) -> Question:
        self._resume = (method, args)
        return question

    def _decoder_failed(self, error: MqttError) -> None:
        if self._state.open:
            self.protocol_violation(error)

    def protocol_violation(self, error: MqttError) -> None:
        """The decoder rejected the bytes: answer with the error's reason code and close."""
        if self.info is None and error.reason_code == rc.UNSUPPORTED_PROTOCOL_VERSION:
            # Answered in 3.1.1 form, as the spec says; the hooks hear of it as of every
            # other refusal (the CONNECT could not be read further: no client id).
            self.info = ClientInfo("", None, getattr(error, "protocol_level", 0), 0, self.peer)
            log.info("refusing %s: %s", self.name(), error)
            self._stats.connections_refused[rc_name(rc.UNSUPPORTED_PROTOCOL_VERSION)] += 1
            self._router.notify_connack(self.info, rc.UNSUPPORTED_PROTOCOL_VERSION)
            self._state.process(Event.CLOSE)
            self.transport.write(encode(ConnAck(rc.V3_UNACCEPTABLE_PROTOCOL_VERSION), 4))
            self.transport.close()
            self._router.notify_disconnected(self.info, reasons.CONNACK_REFUSED)
            return
        reason = reasons.PACKET_TOO_LARGE if error.reason_code == rc.PACKET_TOO_LARGE else (
            reasons.MALFORMED_PACKET if error.reason_code == rc.MALFORMED_PACKET else reasons.PROTOCOL_ERROR)
        log.info("closing %s (%s): %s", self.name(), reason, error)
        self.close(reason, error.reason_code)

    def protocol_error(self, why: str, reason_code: int) -> None:
        log.info("closing %s (protocol error): %s", self.name(), why)
        self.close(reasons.PROTOCOL_ERROR, reason_code)

    # -- CONNECT ---------------------------------------------------------------------

    def _on_connect(self, connect: Connect) -> Question | None:
        if self._state.state is not State.CONNECTING:
            self.protocol_error("second CONNECT", rc.PROTOCOL_ERROR)
            return None
        self._state.process(Event.CONNECT)
        self.protocol_version = version = connect.protocol_version
        if version == 5 and connect.properties.get("maximum_packet_size"):  # a refusing CONNACK respects it too
            self.max_outgoing_size = min(connect.properties["maximum_packet_size"], self._mqtt.max_packet_size)
        client_id = connect.client_id
        if not client_id:
            if version == 5 or (version == 4 and connect.clean_start):
                client_id = self._assigned_id = "auto-" + uuid.uuid4().hex
        username = self.cert_username or connect.username
        self.info = ClientInfo(client_id, username, version, connect.keepalive, self.peer)
        self._router.notify("on_client_connect", self.info)
        if not client_id:
            self._refuse(rc.CLIENT_IDENTIFIER_NOT_VALID, "empty client id")
            return None
        will = connect.will
        if will is not None and not valid_topic_name(will.topic):
            # MQTT-3.1.3-10/11: v5 is told 0x90; v3 has no such code, and is closed without
            # a CONNACK, as mosquitto does.
            self._refuse(rc.TOPIC_NAME_INVALID, f"invalid will topic {will.topic!r}", answer=version == 5)
            return None
        if version == 5 and "authentication_method" in connect.properties:
            # Enhanced authentication is not supported (MQTT-4.12.0-1): CONNACK 0x8C, close.
            self._refuse(rc.BAD_AUTHENTICATION_METHOD,
                         f"unsupported authentication method {connect.properties['authentication_method']!r}")
            return None
        cap = self._mqtt.max_keepalive
        if cap and version < 5 and not 0 < connect.keepalive <= cap:
            # No way to tell a v3 client a shorter keepalive: refused, as mosquitto does.
            self._refuse(rc.CLIENT_IDENTIFIER_NOT_VALID, f"keepalive {connect.keepalive} over mqtt.max_keepalive",
                         counted_as="keepalive_too_long")
            return None
        if not self._settings.authenticates:
            self._accept(connect, connect.will)
            return None
        return self._ask(Authenticate(self.info, connect.password, self.cert_username, self.facts,
                                      will.topic if will is not None else None),
                         Client._authenticated, connect)

    def _authenticated(self, verdict: AuthVerdict, connect: Connect) -> None:
        if verdict.reason_code:
            self._refuse(verdict.reason_code, verdict.why)
            return
        self.acl = verdict.acl
        self.superuser = verdict.superuser
        self._may_receive = getattr(verdict.acl, "may_receive", None)
        will = connect.will
        if will is not None and not verdict.will_allowed:
            log.info("%s: will topic not authorized, will discarded", self.name())
            self._stats.acl_denied["will"] += 1
            will = None
        self._accept(connect, will)

    def _accept(self, connect: Connect, will) -> None:
        config = self._mqtt
        version = self.protocol_version
        props = connect.properties
        if version == 5:
            if props.get("receive_maximum", 1) == 0 or props.get("maximum_packet_size", 1) == 0:
                self.protocol_error("Receive Maximum or Maximum Packet Size of 0", rc.PROTOCOL_ERROR)
                return
            self.send_window = min(props.get("receive_maximum", 65535), config.max_inflight_window)
            self.max_outgoing_size = min(props.get("maximum_packet_size", config.max_packet_size),
                                         config.max_packet_size)
            self._alias_out_max = min(props.get("topic_alias_maximum", 0), config.max_topic_alias)
            expiry = props.get("session_expiry_interval", 0)
        else:
            # EMQX's mqtt.session_expiry_interval: a v3 persistent session does not live for ever.
            v3_expiry = config.session_expiry_interval
            expiry = 0 if connect.clean_start else (max(1, round(v3_expiry)) if v3_expiry else NEVER_EXPIRES)
        info = self.info
        refusal = self._router.refusal(info.client_id, info.username, self._settings.authenticates)
        if refusal is not None:
            if refusal == "other_owner":
                self._refuse(rc.NOT_AUTHORIZED, f"session {info.client_id!r} belongs to another user")
            else:
                self._refuse(rc.QUOTA_EXCEEDED, "limits.max_sessions reached")
            return
        keepalive = connect.keepalive
        cap = config.max_keepalive
        server_keepalive = cap if cap and version == 5 and not 0 < keepalive <= cap else None
        if server_keepalive is not None:
            keepalive = server_keepalive
        if keepalive:
            self.keepalive_timeout = keepalive * config.keepalive_multiplier
        self._state.process(Event.ACCEPTED)
        last_will = LastWill(will, info) if will is not None else None
        self.session, resumed = self._router.attach(self, info.client_id, connect.clean_start, expiry,
                                                    last_will, info.username)
        if self._journaled():
            # A persistent session is on disk before its CONNACK leaves (and what follows
            # the CONNACK, which may already be routed to it, waits behind it).
            self.transport.hold_output(self._barrier.when_durable)
        ack_props = {}
        if version == 5:
            ack_props = {
                "receive_maximum": min(config.max_inflight_window, 65535),
                "maximum_packet_size": config.max_packet_size,
                "topic_alias_maximum": config.max_topic_alias,
            }
            if self._assigned_id:
                ack_props["assigned_client_identifier"] = self._assigned_id
            if server_keepalive is not None:
                ack_props["server_keep_alive"] = server_keepalive
        self._router.notify_connack(self.info, rc.SUCCESS)
        self.send(ConnAck(rc.SUCCESS, resumed, ack_props))
        self._router.notify("on_client_connected", self.info)
        log.debug("%s connected (v%d, %s session)", self.name(), version, "resumed" if resumed else "new")
        if resumed:
            self.session.resend()
        self.session.pump()

    def _journaled(self) -> bool:
        """Whether the session's changes are recorded durably, so that a CONNACK, SUBACK or
        UNSUBACK acknowledging one must wait for its commit (persistent sessions only)."""
        return self._barrier is not None and self.session.journal is not None

    def _refuse(self, reason_code: int, why: str, answer: bool = True, counted_as: str | None = None) -> None:
        """Refuse the CONNECT: CONNACK `reason_code` (v3: its 3.1.1 form) unless not
        `answer` (then the connection just closes), hooks told, counted (as the code's
        name, or `counted_as` where the code is a stand-in), logged."""
        log.info("refusing %s: %s", self.name(), why)
        self._stats.connections_refused[counted_as or rc_name(reason_code)] += 1
        self._router.notify_connack(self.info, reason_code)
        if answer:
            code = reason_code if self.protocol_version == 5 else \
                rc.V5_TO_V3_CONNACK.get(reason_code, rc.V3_SERVER_UNAVAILABLE)
            self.send(ConnAck(code))
        self._close(Event.REFUSED, reasons.CONNACK_REFUSED, None)

    # -- PUBLISH from the client -----------------------------------------------------

    def _on_publish(self, publish: Publish) -> Question | None:
        topic = publish.topic
        props = publish.properties
        if props:
            alias = props.get("topic_alias")
            if alias is not None:
                if not 0 < alias <= self._mqtt.max_topic_alias:
                    self.protocol_error(f"topic alias {alias} out of range", rc.TOPIC_ALIAS_INVALID)
                    return None
                if topic:
                    self._aliases_in[alias] = topic
                else:
                    topic = self._aliases_in.get(alias)
                    if topic is None:
                        self.protocol_error(f"unknown topic alias {alias}", rc.PROTOCOL_ERROR)
                        return None
        if not valid_topic_name(topic):
            self.protocol_error(f"invalid topic name {topic!r}", rc.TOPIC_NAME_INVALID)
            return None
        if len(topic) > self._short_topic and self._topic_too_big(topic):
            self.protocol_error("topic name over limits.max_topic_length or max_topic_levels", rc.TOPIC_NAME_INVALID)
            return None
        self._stats.messages_received[publish.qos] += 1
        if self.acl is not None:
            return self._ask(Authorize(self.acl, PUBLISH, (topic,)), Client._publish_authorized, publish, topic)
        self._route(publish, topic)
        return None

    def _publish_authorized(self, allowed: tuple, publish: Publish, topic: str) -> None:
        if allowed[0]:
            self._route(publish, topic)
        else:
            self._deny_publish(publish)

    def _route(self, publish: Publish, topic: str) -> None:
        qos = publish.qos
        props = publish.properties
        if props and len(props.get("user_property", ())) > self._mqtt.property_size:
            self._stats.messages_dropped["too_many_properties"] += 1
            if qos:  # v5 only: properties do not exist before
                self._ack(encode((PubAck if qos == 1 else PubRec)(publish.packet_id, rc.IMPLEMENTATION_SPECIFIC_ERROR),
                                 5), False)
            return
        if qos == 2:
            seen = self.session.incoming_qos2(publish.packet_id, self._mqtt.max_inflight_window)
            if seen == "duplicate":
                self._ack(encode(PubRec(publish.packet_id), self.protocol_version), False)  # routed once already
                return
            if seen == "full":
                self.protocol_error("receive maximum exceeded", rc.RECEIVE_MAXIMUM_EXCEEDED)
                return
        expires_at = None
        forwarded = {}
        if props:
            forwarded = {k: props[k] for k in _FORWARDED if k in props}
            expiry = props.get("message_expiry_interval")
            if expiry is not None:
                expires_at = time.monotonic() + expiry
        info = self.info
        message = Message(topic, publish.payload, qos, publish.retain, info.client_id, info.username,
                          int(time.time() * 1000), forwarded, expires_at)
        reached = self._router.publish(message, info)
        if qos == 1:
            if reached or self.protocol_version < 5:  # the common answer, without the encoder
                self._ack(b"\x40\x02" + publish.packet_id.to_bytes(2, "big"), True)
            else:
                self._ack(encode(PubAck(publish.packet_id, rc.NO_MATCHING_SUBSCRIBERS), 5), True)
        elif qos == 2:
            code = rc.NO_MATCHING_SUBSCRIBERS if not reached and self.protocol_version == 5 else rc.SUCCESS
            self._ack(encode(PubRec(publish.packet_id, code), self.protocol_version), True)

    def _ack(self, data: bytes, routed: bool) -> None:
        """Send a PUBACK/PUBREC: at once without a durability barrier; otherwise once the
        barrier confirms what was routed, in the order the PUBLISHes came."""
        if len(data) > self.max_outgoing_size:  # only a tiny Maximum Packet Size is below 4 bytes
            self._stats.packets_dropped_too_large += 1
            return
        waiting = self._acks_waiting
        if waiting is None:
            self.transport.write(data)
            return
        if not routed:  # nothing recorded: due as soon as those before it are
            entry = [data, True, None]
            waiting.append(entry)
            if len(waiting) == 1:
                self._durable(entry)
            return
        barrier = self._barrier
        mark = barrier.mark()
        if waiting:
            last = waiting[-1]
            if not last[1] and last[2] == mark:  # the same commit: its callback covers this one
                last[0] += data
                return
        entry = [data, False, mark]  # acknowledgements, durable yet, barrier mark
        waiting.append(entry)
        barrier.when_durable(lambda: self._durable(entry))

    def _durable(self, entry: list) -> None:
        entry[1] = True
        waiting = self._acks_waiting
        while waiting and waiting[0][1]:
            data = waiting.popleft()[0]
            if self._state.state is _CONNECTED:  # a closed connection's acks are dropped
                self.transport.write(data)

    def _deny_publish(self, publish: Publish) -> None:
        """auth.deny_action: disconnect, or refuse this one message (v5 says why; v3 cannot)."""
        self._stats.acl_denied["publish"] += 1
        log.info("%s: publish to %r not authorized", self.name(), publish.topic)
        if self._settings.disconnect_on_deny:
            self.close(reasons.NOT_AUTHORIZED, rc.NOT_AUTHORIZED)
        elif publish.qos == 1:
            self._ack(encode(PubAck(publish.packet_id, rc.NOT_AUTHORIZED), self.protocol_version), False)
        elif publish.qos == 2:
            self._ack(encode(PubRec(publish.packet_id, rc.NOT_AUTHORIZED), self.protocol_version), False)

    def _topic_too_big(self, topic: str) -> bool:
        """Whether a topic name or filter is over limits.max_topic_length or max_topic_levels (counted)."""
        if len(topic) > self._max_topic_length:
            self._stats.limits_hit["max_topic_length"] += 1
            return True
        if topic.count("/") >= self._max_topic_levels:
            self._stats.limits_hit["max_topic_levels"] += 1
            return True
        return False

    def _on_pubrel(self, pubrel: PubRel) -> None:
        known = self.session.release(pubrel.packet_id)
        code = rc.SUCCESS if known or self.protocol_version < 5 else rc.PACKET_IDENTIFIER_NOT_FOUND
        # With persistence the id's release must be durable before PUBCOMP: else, after a
        # crash, a new message reusing the id would be taken for a resend and never routed.
        self._ack(encode(PubComp(pubrel.packet_id, code), self.protocol_version), known)

    # -- acknowledgements of what we sent --------------------------------------------

    # An ack that does not match the QoS and step of the message in flight under its id
    # is a protocol error (MQTT-4.3.2-1, 4.3.3-1); the message stays unacknowledged.

    def _on_puback(self, puback: PubAck) -> None:
        done = self.session.acknowledge(puback.packet_id, "puback")
        if done is WRONG:
            self.protocol_error(f"PUBACK for QoS 2 message {puback.packet_id}", rc.PROTOCOL_ERROR)
        else:
            self._acked(done)

    def _acked(self, done) -> None:
        """on_message_acked, when a hook wants it, for what the session has just finished
        (`done` its Delivery; UNKNOWN for an id not in flight)."""
        acked = self._router.on_acked
        if acked is not None and isinstance(done, Delivery):
            acked(self.info, done.message, done.qos, done.retain)

    def _on_pubrec(self, pubrec: PubRec) -> None:
        packet_id = pubrec.packet_id
        if pubrec.reason_code >= 0x80:  # v5: the receiver refused it; the exchange ends
            found = self.session.acknowledge(packet_id, "pubrec")
            if found is not WRONG:
                self._acked(found)
        else:
            found = self.session.received(packet_id)
            if found is ACKED:
                self.send_pubrel(packet_id)
            elif found is UNKNOWN and self.protocol_version == 5:
                self.send(PubRel(packet_id, rc.PACKET_IDENTIFIER_NOT_FOUND))
        if found is WRONG:
            self.protocol_error(f"PUBREC for message {packet_id}, not a QoS 2 one awaiting it", rc.PROTOCOL_ERROR)

    def _on_pubcomp(self, pubcomp: PubComp) -> None:
        done = self.session.acknowledge(pubcomp.packet_id, "pubcomp")
        if done is WRONG:
            self.protocol_error(f"PUBCOMP for message {pubcomp.packet_id}, not a released QoS 2 one",
                                rc.PROTOCOL_ERROR)
        else:
            self._acked(done)

    # -- SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------

    def _on_subscribe(self, subscribe: Subscribe) -> Question | None:
        """Check each filter; those that pass go to the ACL (one question for all), then
        `_subscribe_authorized` subscribes and answers."""
        v5 = self.protocol_version == 5
        entries = []  # per filter: a refusal code, or (subscription, group, plain filter)
        for sub in subscribe.subscriptions:
            try:
                group, plain_filter = parse_shared(sub.topic_filter)
            except ValueError:
                group, plain_filter = None, ""
            if not valid_topic_filter(plain_filter) or self._topic_too_big(sub.topic_filter):
                entries.append(rc.TOPIC_FILTER_INVALID if v5 else 0x80)
                continue
            if group is not None and sub.no_local:
                self.protocol_error("No Local on a shared subscription", rc.PROTOCOL_ERROR)
                return None
            entries.append((sub, group, plain_filter))
        if self.acl is None:
            return self._subscribe_authorized(None, subscribe, entries)
        topics = tuple(entry[2] for entry in entries if not isinstance(entry, int))
        return self._ask(Authorize(self.acl, SUBSCRIBE, topics), Client._subscribe_authorized, subscribe, entries)

    def _subscribe_authorized(self, allowed: tuple | None, subscribe: Subscribe, entries: list) -> Question | None:
        identifiers = subscribe.properties.get("subscription_identifier") or [None]
        identifier = identifiers[0]
        v5 = self.protocol_version == 5
        max_subscriptions = self._settings.limits.max_subscriptions
        session = self.session
        verdicts = iter(allowed or ())
        codes = []
        retained = []
        for entry in entries:
            if isinstance(entry, int):
                codes.append(entry)
                continue
            sub, group, plain_filter = entry
            if allowed is not None and not next(verdicts):
                self._stats.acl_denied["subscribe"] += 1
                log.info("%s: subscribe to %r not authorized", self.name(), sub.topic_filter)
                if self._settings.disconnect_on_deny:
                    self.close(reasons.NOT_AUTHORIZED, rc.NOT_AUTHORIZED)
                    return None
                codes.append(rc.NOT_AUTHORIZED if v5 else 0x80)
                continue
            if max_subscriptions and len(session.subscriptions) >= max_subscriptions \
                    and sub.topic_filter not in session.subscriptions:
                self._stats.limits_hit["max_subscriptions"] += 1
                codes.append(rc.QUOTA_EXCEEDED if v5 else 0x80)
                continue
            qos = min(sub.qos, 2)
            self._router.notify("on_client_subscribe", self.info, sub)
            options = SubscriptionOptions(qos, sub.no_local, sub.retain_as_published, identifier)
            existed = self._router.subscribe(session, sub.topic_filter, group, plain_filter, options)
            self._router.notify("on_session_subscribed", self.info, sub, not existed)
            codes.append(qos)
            if group is None and (sub.retain_handling == 0 or (sub.retain_handling == 1 and not existed)):
                retained.append((plain_filter, qos, identifier))
        if self._journaled():
            return self._ask(AwaitDurable(self._barrier), Client._subscribed, subscribe.packet_id, codes, retained)
        self._subscribed(None, subscribe.packet_id, codes, retained)
        return None

    def _subscribed(self, _durable, packet_id: int, codes: list, retained: list) -> None:
        self.send(SubAck(packet_id, codes))
        if retained:
            self._send_retained(self.session, retained)

    def _send_retained(self, session: Session, lookups: list) -> None:
        """After the SUBACK (which goes out first): the retained messages of each new
        subscription, looked up and sent _RETAINED_BATCH at a time, the transport pausing
        between batches (and the lookup every few thousand levels it walks), so a
        SUBSCRIBE that matches much never stalls other clients. Stops if the connection
        closes or loses its session meanwhile; the outbox budget and session queue apply
        as to any delivery."""
        pause = self.transport.pause
        if self._router.retained_count():
            pause()  # the SUBACK goes out before any lookup, however long
            if self._state.state is not _CONNECTED or self.session is not session:
                return
        self._replaying = True
        try:
            self._replay(session, lookups, pause)
        finally:
            self._replaying = False

    def _replay(self, session: Session, lookups: list, pause) -> None:
        sent = 0
        for plain_filter, granted, ident in lookups:
            ids = (ident,) if ident else ()
            for message in self._router.retained_matching(plain_filter, pause):
                if sent and sent % _RETAINED_BATCH == 0:
                    pause()
                if self._state.state is not _CONNECTED or self.session is not session:
                    return  # (the lookup pauses too)
                sent += 1
                qos = message.qos if message.qos < granted else granted
                session.deliver(message, qos, True, ids)

    def _on_unsubscribe(self, unsubscribe: Unsubscribe) -> Question | None:
        codes = []
        for f in unsubscribe.topic_filters:
            self._router.notify("on_client_unsubscribe", self.info, f)
            existed = self._router.unsubscribe(self.session, f)
            codes.append(rc.SUCCESS if existed else rc.NO_SUBSCRIPTION_EXISTED)
            if existed:
                self._router.notify("on_session_unsubscribed", self.info, f)
        if self._journaled():
            return self._ask(AwaitDurable(self._barrier), Client._unsubscribed, unsubscribe.packet_id, codes)
        self._unsubscribed(None, unsubscribe.packet_id, codes)
        return None

    def _unsubscribed(self, _durable, packet_id: int, codes: list) -> None:
        self.send(UnsubAck(packet_id, codes))

    # -- a reload changed access control ---------------------------------------------

    def subscription_filters(self) -> list[tuple[str, str]]:
        """(filter as subscribed, filter without its $share/<group>/) of each subscription,
        for the shell to ask the new ACL about."""
        if self.session is None or self._state.state is not _CONNECTED:
            return []
        return [(topic_filter, parse_shared(topic_filter)[1]) for topic_filter in self.session.subscriptions]

    def reauthorized(self, acl, revoked: list[str], disconnect: bool) -> None:
        """A reload changed access control: `acl` is the client's ACL from now on, and the
        new rules deny the subscriptions `revoked`. They are removed. MQTT has no packet
        that tells a client a subscription ended (no unsolicited UNSUBACK), so with
        `disconnect` (the new auth.deny_action = disconnect) the client is disconnected (v5: DISCONNECT 0x87
        Not authorized) and learns it that way; with ignore the subscription just stops
        delivering, as a SUBSCRIBE the ACL refuses would have."""
        self.acl = acl
        self._may_receive = getattr(acl, "may_receive", None)
        if not revoked or self._state.state is not _CONNECTED:
            return
        for topic_filter in revoked:
            self._router.unsubscribe(self.session, topic_filter)
            self._stats.acl_denied["subscribe"] += 1
        log.info("%s: subscription(s) %s no longer authorized (reload), removed", self.name(),
                 ", ".join(repr(f) for f in revoked))
        if disconnect:
            self.close(reasons.NOT_AUTHORIZED, rc.NOT_AUTHORIZED)

    # -- the rest --------------------------------------------------------------------

    def _on_pingreq(self, _ping) -> None:
        self.send(PingResp())

    def _on_disconnect(self, disconnect: Disconnect) -> None:
        expiry = disconnect.properties.get("session_expiry_interval")
        if expiry is not None and not self.session.update_expiry(expiry):
            self.protocol_error("Session Expiry set at DISCONNECT after 0 at CONNECT", rc.PROTOCOL_ERROR)
            return
        if disconnect.reason_code != rc.DISCONNECT_WITH_WILL_MESSAGE:
            self.session.take_will()  # a normal DISCONNECT discards the will; 0x04 keeps it
        self.close(reasons.NORMAL)

    def _on_auth(self, _auth) -> None:
        self.protocol_error("AUTH without an authentication method", rc.PROTOCOL_ERROR)

    # -- output (the session's Link) -------------------------------------------------

    def send(self, packet) -> None:
        """Encode and queue a packet of ours, within the client's Maximum Packet Size
        (MQTT-3.1.2-24): a v5 packet over it loses its Reason String and User Properties
        first, then its other properties; one still over it is not sent (counted)."""
        data = encode(packet, self.protocol_version)
        if len(data) > self.max_outgoing_size:
            data = self._shrunk(packet)
            if data is None:
                self._stats.packets_dropped_too_large += 1
                log.info("%s: %s over the client's Maximum Packet Size, not sent", self.name(),
                         type(packet).__name__)
                return
        self.transport.write(data)

    def _shrunk(self, packet) -> bytes | None:
        properties = getattr(packet, "properties", None)
        if self.protocol_version != 5 or not properties:
            return None
        for keep in (lambda name: name not in _OPTIONAL_PROPERTIES, lambda name: False):
            packet.properties = {k: v for k, v in properties.items() if keep(k)}
            data = encode(packet, 5)
            if len(data) <= self.max_outgoing_size:
                return data
        return None

    def may_receive(self, topic: str) -> bool:
        """Whether this client's ACL lets it read `topic` (the session's Link)."""
        return self._may_receive is None or self._may_receive(topic)

    def send_pubrel(self, packet_id: int) -> None:
        self.send(PubRel(packet_id))

    def send_publish(self, message: Message, qos: int, retain: bool, subscription_ids: tuple,
                     packet_id: int | None, dup: bool) -> bool:
        if self._state.state is not _CONNECTED:
            return False
        if qos == 0 and not self.has_room():
            self._stats.messages_dropped["slow_subscriber"] += 1
            return False
        if self._may_receive is not None and not self._may_receive(message.topic):
            # The ACL's read permission (hardening): the one place deliveries are checked.
            self._stats.acl_denied["receive"] += 1
            return False
        version = self.protocol_version
        if version == 5 and (message.expires_at is not None or subscription_ids or self._alias_out_max):
            data = self._encode_v5_publish(message, qos, retain, subscription_ids, packet_id, dup)
            if data is None:
                return False
            size = len(data)
            tail = None
        else:  # the same bytes for every such subscriber: encode once per message
            key = (version == 5, qos, retain)
            wire = message.wire
            parts = wire.get(key) if wire is not None else None
            if parts is None:
                parts = publish_parts(
                    Publish(message.topic, message.payload, qos, retain, False, None, message.properties), version)
                # Not kept for a retained replay: 100,000 long-lived encodings at once
                # would cost their memory for ever and set off a full GC pass (~0.1 s).
                if not self._replaying:
                    if wire is None:
                        wire = message.wire = {}
                    wire[key] = parts
            head, tail = parts
            if dup:
                head = bytes((head[0] | 0x08,)) + head[1:]
            if qos:
                head += packet_id.to_bytes(2, "big")
            size = len(head) + len(tail)
            if len(tail) <= _SHARED_TAIL:
                data, tail = head + tail, None
            else:
                data = head
        if size > self.max_outgoing_size:
            self._stats.messages_dropped["too_large"] += 1
            return False
        self._stats.messages_sent[qos] += 1
        self.transport.write(data, tail)
        delivered = self._router.on_delivered  # None unless a hook wants on_message_delivered
        if delivered is not None and not dup:
            delivered(self.info, message, qos, retain)
        return True

    def _encode_v5_publish(self, message: Message, qos: int, retain: bool, subscription_ids: tuple,
                           packet_id: int | None, dup: bool) -> bytes | None:
        """A v5 PUBLISH with properties of its own: remaining expiry, subscription
        identifiers, topic alias. None if the message expired on the way."""
        topic = message.topic
        properties = dict(message.properties)
        if message.expires_at is not None:
            remaining = message.expires_at - time.monotonic()
            if remaining <= 0:
                self._stats.messages_dropped["expired"] += 1
                return None
            properties["message_expiry_interval"] = int(remaining + 0.999)
        if subscription_ids:
            properties["subscription_identifier"] = list(subscription_ids)
        if self._alias_out_max:
            alias = self._aliases_out.get(topic)
            if alias is not None:
                properties["topic_alias"] = alias
                topic = ""
            elif len(self._aliases_out) < self._alias_out_max:
                alias = self._aliases_out[topic] = len(self._aliases_out) + 1
                properties["topic_alias"] = alias
        return encode(Publish(topic, message.payload, qos, retain, dup, packet_id, properties), 5)

    def outbox_drained(self) -> None:
        """The transport's queue fell back under its budget: messages waiting in the
        session may go now."""
        if self._state.state is _CONNECTED:
            self.session.pump()

    # -- deadlines (checked by the listener's timers) --------------------------------

    def connect_overdue(self) -> None:
        """No CONNECT within mqtt.connect_timeout."""
        if self._state.state is State.CONNECTING:
            self._stats.limits_hit["connect_timeout"] += 1
            self.close(reasons.KEEPALIVE_TIMEOUT)

    def keepalive_expired(self) -> None:
        self.close(reasons.KEEPALIVE_TIMEOUT, rc.KEEP_ALIVE_TIMEOUT)

    # -- closing ---------------------------------------------------------------------

    def take_over(self) -> None:
        """Another connection claimed this client id (the broker already moved the session)."""
        self._close(Event.TAKEN_OVER, reasons.TAKEN_OVER, rc.SESSION_TAKEN_OVER)

    def shut_down(self) -> None:
        self.close(reasons.SERVER_SHUTDOWN, rc.SERVER_SHUTTING_DOWN)

    def close(self, reason: str, reason_code: int | None = None) -> None:
        """End the connection once: tell a v5 client why, clean up, fire the hook."""
        self._close(Event.CLOSE, reason, reason_code)

    def _close(self, event: Event, reason: str, reason_code: int | None) -> None:
        if not self._state.open:
            return
        was = self._state.state
        self._state.process(event)
        if reason_code is not None and self.protocol_version == 5:
            if was is _CONNECTED:
                self.send(Disconnect(reason_code))
            elif was is State.AUTHENTICATING and reason_code >= 0x80:
                self.send(ConnAck(reason_code))  # v5 CONNECT that failed before acceptance
        self.transport.close()
        if was is _CONNECTED:
            self._router.detach(self.session, self, reason)
        if self.info is not None:
            self._router.notify_disconnected(self.info, reason)

    def connection_lost(self, reason: str) -> None:
        """The transport is gone (EOF, an error, or the end of our own close)."""
        if self._state.state is State.CLOSED:
            return
        if self._state.open:
            log.debug("connection of %s lost: %s", self.name(), reason)
            self.close(reason)
        self._state.process(Event.TRANSPORT_CLOSED)
        if self._acks_waiting:
            self._acks_waiting.clear()

    def name(self) -> str:
        """The client id ("?" before CONNECT) and peer address as id@host:port, for logs."""
        client_id = self.info.client_id if self.info else "?"
        return f"{client_id}@{self.peer[0]}:{self.peer[1]}"


Client._handlers = {
    Connect: Client._on_connect,
    Publish: Client._on_publish,
    PubAck: Client._on_puback,
    PubRec: Client._on_pubrec,
    PubRel: Client._on_pubrel,
    PubComp: Client._on_pubcomp,
    Subscribe: Client._on_subscribe,
    Unsubscribe: Client._on_unsubscribe,
    PingReq: Client._on_pingreq,
    Disconnect: Client._on_disconnect,
    Auth: Client._on_auth,
}


def rc_name(reason_code: int) -> str:
    """A metrics label for a refusal reason code."""
    return _REFUSAL_NAMES.get(reason_code, f"0x{reason_code:02x}")


_REFUSAL_NAMES = {
    rc.CLIENT_IDENTIFIER_NOT_VALID: "client_id_invalid",
    rc.BAD_USER_NAME_OR_PASSWORD: "bad_credentials",
    rc.NOT_AUTHORIZED: "not_authorized",
    rc.SERVER_UNAVAILABLE: "server_unavailable",
    rc.SERVER_BUSY: "server_busy",
    rc.UNSUPPORTED_PROTOCOL_VERSION: "unsupported_protocol_version",
    rc.TOPIC_NAME_INVALID: "will_topic_invalid",  # the only CONNACK refusal with 0x90
    rc.BAD_AUTHENTICATION_METHOD: "bad_authentication_method",
    rc.QUOTA_EXCEEDED: "max_sessions",  # the only CONNACK refusal with 0x97
}
