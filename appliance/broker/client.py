"""One client connection's protocol state: what to answer to each packet it sends.

`Client` is fed decoded packets by the listener and answers through a transport with two
operations, `write(bytes)` (queue, never blocks) and `close()` (flush, then close). It
holds what belongs to the connection (version, limits, topic aliases, will); what outlives
the connection belongs to its `Session`.
"""

from __future__ import annotations

import logging
import time
import uuid

from ..auth.acl import PUBLISH, SUBSCRIBE
from ..mqtt import reason_codes as rc
from ..mqtt.codec import encode, publish_parts
from ..mqtt.errors import MqttError
from ..mqtt.packets import (
    Auth, ConnAck, Connect, Disconnect, PingReq, PingResp, PubAck, PubComp, Publish, PubRec, PubRel,
    SubAck, Subscribe, UnsubAck, Unsubscribe,
)
from . import hooks as reasons
from .hooks import ClientInfo
from .message import Message
from .session import NEVER_EXPIRES, SubscriptionOptions
from .topics import parse_shared, valid_topic_filter, valid_topic_name

log = logging.getLogger(__name__)

# Properties a publisher sets that travel with the message to subscribers.
_FORWARDED = ("payload_format_indicator", "content_type", "response_topic", "correlation_data", "user_property")
# QoS 0 messages to a client whose socket is this far behind are dropped, not buffered.
MAX_PENDING_BYTES = 4 * 1024 * 1024


class Client:
    """Protocol decisions for one network connection, from CONNECT to close."""

    def __init__(self, broker, transport, peer: tuple, cert_username: str | None = None,
                 facts: dict | None = None) -> None:
        self.broker = broker
        self.transport = transport
        self.peer = peer
        self.cert_username = cert_username  # a verified client certificate's CN (peer_cert_as_username)
        self.facts = facts or {}  # what http_auth may ask about the connection: %p, %C, %d
        self.acl = None  # a ClientAcl when an ACL applies to this client; None costs one check
        self.info: ClientInfo | None = None
        self.protocol_version = 4
        self.session = None
        self.will = None
        self.connected = False  # CONNACK success sent
        self.closed = False
        self.keepalive_timeout: float | None = None  # seconds without a packet before closing
        self.send_window = broker.config.max_inflight_window  # v5: the client's Receive Maximum
        self.max_outgoing_size = broker.config.max_packet_size
        self._aliases_in: dict[int, str] = {}
        self._aliases_out: dict[str, int] = {}
        self._alias_out_max = 0
        limits = broker.limits
        self._max_topic_length = limits.max_topic_length
        self._max_topic_levels = limits.max_topic_levels
        # A topic no longer than this is within both limits (N levels take N - 1 slashes).
        self._short_topic = min(limits.max_topic_length, limits.max_topic_levels - 1)

    # -- input -----------------------------------------------------------------------

    _handlers: dict = {}  # packet class -> method, filled in below the class

    def handle(self, packet) -> None:
        handler = self._handlers.get(type(packet))
        if handler is None:
            self.protocol_error(f"unexpected {type(packet).__name__}", rc.PROTOCOL_ERROR)
            return
        handler(self, packet)

    def protocol_violation(self, error: MqttError) -> None:
        """The decoder rejected the bytes: answer with the error's reason code and close."""
        if self.info is None and error.reason_code == rc.UNSUPPORTED_PROTOCOL_VERSION:
            # No session yet, so no hooks: answer in 3.1.1 form, as the spec says.
            self.transport.write(encode(ConnAck(rc.V3_UNACCEPTABLE_PROTOCOL_VERSION), 4))
            self.transport.close()
            self.closed = True
            return
        reason = reasons.PACKET_TOO_LARGE if error.reason_code == rc.PACKET_TOO_LARGE else (
            reasons.MALFORMED_PACKET if error.reason_code == rc.MALFORMED_PACKET else reasons.PROTOCOL_ERROR)
        log.info("closing %s (%s): %s", self.name(), reason, error)
        self.close(reason, error.reason_code)

    def protocol_error(self, why: str, reason_code: int) -> None:
        log.info("closing %s (protocol error): %s", self.name(), why)
        self.close(reasons.PROTOCOL_ERROR, reason_code)

    def connection_lost(self, reason: str) -> None:
        """The socket closed, failed or timed out."""
        if not self.closed:
            log.debug("connection of %s lost: %s", self.name(), reason)
        self.close(reason, rc.KEEP_ALIVE_TIMEOUT if reason == reasons.KEEPALIVE_TIMEOUT else None)

    # -- CONNECT ---------------------------------------------------------------------

    def _on_connect(self, connect: Connect) -> None:
        if self.info is not None:
            self.protocol_error("second CONNECT", rc.PROTOCOL_ERROR)
            return
        config = self.broker.config
        self.protocol_version = version = connect.protocol_version
        props = connect.properties
        client_id = connect.client_id
        assigned = None
        if not client_id:
            if version == 5 or (version == 4 and connect.clean_start):
                client_id = assigned = "auto-" + uuid.uuid4().hex
        username = self.cert_username or connect.username
        self.info = ClientInfo(client_id, username, version, connect.keepalive, self.peer)
        if not client_id:
            self._refuse(rc.CLIENT_IDENTIFIER_NOT_VALID, "empty client id")
            return
        will = connect.will
        access = self.broker.access
        if access is not None:
            verdict = access.authenticate(self.info, connect.password, self.cert_username, self.facts)
            if self.closed:  # e.g. the broker stopped while an auth server was asked
                return
            if verdict.reason_code:
                self._refuse(verdict.reason_code, verdict.why)
                return
            self.acl = access.client_acl(self.info, verdict.superuser, self.facts)
            if will is not None and self.acl is not None and not self.acl.allows(PUBLISH, will.topic):
                log.info("%s: will topic not authorized, will discarded", self.name())
                self.broker.stats.acl_denied["will"] += 1
                will = None
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
            expiry = 0 if connect.clean_start else NEVER_EXPIRES
        if connect.keepalive:
            self.keepalive_timeout = connect.keepalive * config.keepalive_multiplier
        self.will = will
        resumed = self.broker.attach(self, connect.clean_start, expiry)
        self.connected = True
        ack_props = {}
        if version == 5:
            ack_props = {
                "receive_maximum": min(config.max_inflight_window, 65535),
                "maximum_packet_size": config.max_packet_size,
                "topic_alias_maximum": config.max_topic_alias,
            }
            if assigned:
                ack_props["assigned_client_identifier"] = assigned
        self.broker.notify_connack(self.info, rc.SUCCESS)
        self.send(ConnAck(rc.SUCCESS, resumed, ack_props))
        log.debug("%s connected (v%d, %s session)", self.name(), version, "resumed" if resumed else "new")
        if resumed:
            self.session.resend()
        self.session.pump()

    def _refuse(self, reason_code: int, why: str) -> None:
        log.info("refusing %s: %s", self.name(), why)
        self.broker.stats.connections_refused[rc_name(reason_code)] += 1
        self.broker.notify_connack(self.info, reason_code)
        code = reason_code if self.protocol_version == 5 else rc.V5_TO_V3_CONNACK.get(reason_code, rc.V3_SERVER_UNAVAILABLE)
        self.send(ConnAck(code))
        self.close(reasons.CONNACK_REFUSED)

    # -- PUBLISH from the client -----------------------------------------------------

    def _on_publish(self, publish: Publish) -> None:
        topic = publish.topic
        props = publish.properties
        if props:
            alias = props.get("topic_alias")
            if alias is not None:
                if not 0 < alias <= self.broker.config.max_topic_alias:
                    self.protocol_error(f"topic alias {alias} out of range", rc.TOPIC_ALIAS_INVALID)
                    return
                if topic:
                    self._aliases_in[alias] = topic
                else:
                    topic = self._aliases_in.get(alias)
                    if topic is None:
                        self.protocol_error(f"unknown topic alias {alias}", rc.PROTOCOL_ERROR)
                        return
        if not valid_topic_name(topic):
            self.protocol_error(f"invalid topic name {topic!r}", rc.TOPIC_NAME_INVALID)
            return
        if len(topic) > self._short_topic and self._topic_too_big(topic):
            self.protocol_error("topic name over limits.max_topic_length or max_topic_levels", rc.TOPIC_NAME_INVALID)
            return
        qos = publish.qos
        self.broker.stats.messages_received[qos] += 1
        acl = self.acl
        if acl is not None and not acl.allows(PUBLISH, topic):
            self._deny_publish(publish)
            return
        if props and len(props.get("user_property", ())) > self.broker.config.property_size:
            self.broker.stats.messages_dropped["too_many_properties"] += 1
            if qos:  # v5 only: properties do not exist before
                self.send((PubAck if qos == 1 else PubRec)(publish.packet_id, rc.IMPLEMENTATION_SPECIFIC_ERROR))
            return
        if qos == 2 and publish.packet_id in self.session.awaiting_release:
            self.send(PubRec(publish.packet_id))  # a resend: already routed once
            return
        if qos == 2 and len(self.session.awaiting_release) >= self.broker.config.max_inflight_window:
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
        reached = self.broker.publish(message, info)
        if qos == 1:
            if reached or self.protocol_version < 5:  # the common answer, without the encoder
                self.transport.write(b"\x40\x02" + publish.packet_id.to_bytes(2, "big"))
            else:
                self.send(PubAck(publish.packet_id, rc.NO_MATCHING_SUBSCRIBERS))
        elif qos == 2:
            self.session.awaiting_release.add(publish.packet_id)
            code = rc.NO_MATCHING_SUBSCRIBERS if not reached and self.protocol_version == 5 else rc.SUCCESS
            self.send(PubRec(publish.packet_id, code))

    def _deny_publish(self, publish: Publish) -> None:
        """auth.deny_action: disconnect, or refuse this one message (v5 says why; v3 cannot)."""
        self.broker.stats.acl_denied["publish"] += 1
        log.info("%s: publish to %r not authorized", self.name(), publish.topic)
        if self.broker.access.disconnect_on_deny:
            self.close(reasons.NOT_AUTHORIZED, rc.NOT_AUTHORIZED)
        elif publish.qos == 1:
            self.send(PubAck(publish.packet_id, rc.NOT_AUTHORIZED))
        elif publish.qos == 2:
            self.send(PubRec(publish.packet_id, rc.NOT_AUTHORIZED))

    def _topic_too_big(self, topic: str) -> bool:
        """Whether a topic name or filter is over limits.max_topic_length or max_topic_levels (counted)."""
        if len(topic) > self._max_topic_length:
            self.broker.stats.limits_hit["max_topic_length"] += 1
            return True
        if topic.count("/") >= self._max_topic_levels:
            self.broker.stats.limits_hit["max_topic_levels"] += 1
            return True
        return False

    def _on_pubrel(self, pubrel: PubRel) -> None:
        known = pubrel.packet_id in self.session.awaiting_release
        self.session.awaiting_release.discard(pubrel.packet_id)
        code = rc.SUCCESS if known or self.protocol_version < 5 else rc.PACKET_IDENTIFIER_NOT_FOUND
        self.send(PubComp(pubrel.packet_id, code))

    # -- acknowledgements of what we sent --------------------------------------------

    def _on_puback(self, puback: PubAck) -> None:
        self.session.acknowledge(puback.packet_id)

    def _on_pubrec(self, pubrec: PubRec) -> None:
        if pubrec.reason_code >= 0x80:  # v5: the receiver refused it; the exchange ends
            self.session.acknowledge(pubrec.packet_id)
        elif self.session.release(pubrec.packet_id) or self.protocol_version == 5:
            self.send_pubrel(pubrec.packet_id)

    def _on_pubcomp(self, pubcomp: PubComp) -> None:
        self.session.acknowledge(pubcomp.packet_id)

    # -- SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------

    def _on_subscribe(self, subscribe) -> None:
        identifiers = subscribe.properties.get("subscription_identifier") or [None]
        identifier = identifiers[0]
        v5 = self.protocol_version == 5
        acl = self.acl
        max_subscriptions = self.broker.limits.max_subscriptions
        codes = []
        retained = []
        for sub in subscribe.subscriptions:
            try:
                group, plain_filter = parse_shared(sub.topic_filter)
            except ValueError:
                group, plain_filter = None, ""
            if not valid_topic_filter(plain_filter):
                codes.append(rc.TOPIC_FILTER_INVALID if v5 else 0x80)
                continue
            if self._topic_too_big(sub.topic_filter):
                codes.append(rc.TOPIC_FILTER_INVALID if v5 else 0x80)
                continue
            if group is not None and sub.no_local:
                self.protocol_error("No Local on a shared subscription", rc.PROTOCOL_ERROR)
                return
            if acl is not None and not acl.allows(SUBSCRIBE, plain_filter):
                self.broker.stats.acl_denied["subscribe"] += 1
                log.info("%s: subscribe to %r not authorized", self.name(), sub.topic_filter)
                if self.broker.access.disconnect_on_deny:
                    self.close(reasons.NOT_AUTHORIZED, rc.NOT_AUTHORIZED)
                    return
                codes.append(rc.NOT_AUTHORIZED if v5 else 0x80)
                continue
            if max_subscriptions and len(self.session.subscriptions) >= max_subscriptions \
                    and sub.topic_filter not in self.session.subscriptions:
                self.broker.stats.limits_hit["max_subscriptions"] += 1
                codes.append(rc.QUOTA_EXCEEDED if v5 else 0x80)
                continue
            qos = min(sub.qos, 2)
            options = SubscriptionOptions(qos, sub.no_local, sub.retain_as_published, identifier)
            existed = self.broker.subscribe(self.session, sub.topic_filter, group, plain_filter, options)
            codes.append(qos)
            if group is None and (sub.retain_handling == 0 or (sub.retain_handling == 1 and not existed)):
                retained.extend((m, qos, identifier) for m in self.broker.retained.matching(plain_filter))
        self.send(SubAck(subscribe.packet_id, codes))
        for message, granted, ident in retained:
            qos = message.qos if message.qos < granted else granted
            self.session.deliver(message, qos, True, (ident,) if ident else ())

    def _on_unsubscribe(self, unsubscribe) -> None:
        codes = [
            rc.SUCCESS if self.broker.unsubscribe(self.session, f) else rc.NO_SUBSCRIPTION_EXISTED
            for f in unsubscribe.topic_filters
        ]
        self.send(UnsubAck(unsubscribe.packet_id, codes))

    # -- the rest --------------------------------------------------------------------

    def _on_pingreq(self, _ping) -> None:
        self.send(PingResp())

    def _on_disconnect(self, disconnect: Disconnect) -> None:
        expiry = disconnect.properties.get("session_expiry_interval")
        if expiry is not None and self.session is not None:
            if self.session.expiry_interval == 0 and expiry != 0:
                self.protocol_error("Session Expiry set at DISCONNECT after 0 at CONNECT", rc.PROTOCOL_ERROR)
                return
            self.session.expiry_interval = expiry
        if disconnect.reason_code != rc.DISCONNECT_WITH_WILL_MESSAGE:
            self.will = None  # a normal DISCONNECT discards the will; 0x04 keeps it
        self.close(reasons.NORMAL)

    def _on_auth(self, _auth) -> None:
        self.protocol_error("AUTH without an authentication method", rc.PROTOCOL_ERROR)

    # -- output ----------------------------------------------------------------------

    def send(self, packet) -> None:
        self.transport.write(encode(packet, self.protocol_version))

    def send_pubrel(self, packet_id: int) -> None:
        self.send(PubRel(packet_id))

    def send_publish(self, message: Message, qos: int, retain: bool, subscription_ids: tuple,
                     packet_id: int | None, dup: bool) -> None:
        if qos == 0 and self.transport.pending_bytes > MAX_PENDING_BYTES:
            self.broker.stats.messages_dropped["slow_subscriber"] += 1
            return
        version = self.protocol_version
        if version == 5 and (message.expires_at is not None or subscription_ids or self._alias_out_max):
            data = self._encode_v5_publish(message, qos, retain, subscription_ids, packet_id, dup)
            if data is None:
                return
        else:  # the same bytes for every such subscriber: encode once per message
            key = (version == 5, qos, retain)
            wire = message.wire
            if wire is None:
                wire = message.wire = {}
            parts = wire.get(key)
            if parts is None:
                parts = wire[key] = publish_parts(
                    Publish(message.topic, message.payload, qos, retain, False, None, message.properties), version)
            head, tail = parts
            if dup:
                head = bytes((head[0] | 0x08,)) + head[1:]
            data = head + packet_id.to_bytes(2, "big") + tail if qos else head + tail
        if len(data) > self.max_outgoing_size:
            self.broker.stats.messages_dropped["too_large"] += 1
            if packet_id is not None:
                self.session.inflight.pop(packet_id, None)
            return
        self.broker.stats.messages_sent[qos] += 1
        self.transport.write(data)

    def _encode_v5_publish(self, message: Message, qos: int, retain: bool, subscription_ids: tuple,
                           packet_id: int | None, dup: bool) -> bytes | None:
        """A v5 PUBLISH with properties of its own: remaining expiry, subscription
        identifiers, topic alias. None if the message expired on the way."""
        topic = message.topic
        properties = dict(message.properties)
        if message.expires_at is not None:
            remaining = message.expires_at - time.monotonic()
            if remaining <= 0:
                self.broker.stats.messages_dropped["expired"] += 1
                if packet_id is not None:
                    self.session.inflight.pop(packet_id, None)
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

    # -- closing ---------------------------------------------------------------------

    def take_over(self) -> None:
        """Another connection claimed this client id (called with the session detached)."""
        self.close(reasons.TAKEN_OVER, rc.SESSION_TAKEN_OVER)

    def shut_down(self) -> None:
        self.close(reasons.SERVER_SHUTDOWN, rc.SERVER_SHUTTING_DOWN)

    def close(self, reason: str, reason_code: int | None = None) -> None:
        """End the connection once: tell a v5 client why, clean up, fire the hook."""
        if self.closed:
            return
        self.closed = True
        if reason_code is not None and self.connected and self.protocol_version == 5:
            self.send(Disconnect(reason_code))
        elif reason_code is not None and self.info is not None and not self.connected \
                and self.protocol_version == 5 and reason_code >= 0x80:
            self.send(ConnAck(reason_code))  # v5 CONNECT that failed before acceptance
        self.transport.close()
        if self.connected:
            self.broker.detach(self)
        if self.info is not None:
            self.broker.notify_disconnected(self.info, reason)

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
}
