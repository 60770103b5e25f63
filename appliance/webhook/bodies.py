"""The JSON bodies NanoMQ POSTs, byte for byte: same keys, same key order, compact, UTF-8.

NanoMQ builds them with cJSON in the order below; a receiver written for NanoMQ must not
see a difference, except where NanoMQ emits invalid JSON or loses data (see the spec).

The events NanoMQ accepts but never fires carry the fields EMQX 4.x's emqx_web_hook sends
(`emqx_web_hook.erl`), in the order that module lists them, with this broker's conventions
where they differ: a missing username is "undefined" (EMQX: null), payloads follow
`body.encoding`, times are epoch milliseconds. EMQX's `node` is left out (NanoMQ sends none).
"""

from __future__ import annotations

import json

from appliance.broker.hooks import ClientInfo
from appliance.broker.message import Message
from appliance.mqtt import reason_codes as rc

CONNACK = "client_connack"
DISCONNECTED = "client_disconnected"
PUBLISH = "message_publish"
# EMQX's further events (emqx_web_hook, EMQX 4.x), fired only when a rule names them.
CONNECT = "client_connect"
CONNECTED = "client_connected"
SUBSCRIBE = "client_subscribe"
UNSUBSCRIBE = "client_unsubscribe"
SUBSCRIBED = "session_subscribed"
UNSUBSCRIBED = "session_unsubscribed"
TERMINATED = "session_terminated"
DELIVERED = "message_delivered"
ACKED = "message_acked"
DROPPED = "message_dropped"

UNDEFINED = "undefined"  # NanoMQ's username when the client gave none

# `conn_ack` for a refused CONNECT: the MQTT 5 reason code's name, as EMQX spells it.
# NanoMQ itself sends "fail" for every refusal; we keep "fail" for codes without a name.
CONNACK_REASONS = {
    rc.SUCCESS: "success",
    rc.UNSPECIFIED_ERROR: "unspecified_error",
    rc.MALFORMED_PACKET: "malformed_packet",
    rc.PROTOCOL_ERROR: "protocol_error",
    rc.IMPLEMENTATION_SPECIFIC_ERROR: "implementation_specific_error",
    rc.UNSUPPORTED_PROTOCOL_VERSION: "unsupported_protocol_version",
    rc.CLIENT_IDENTIFIER_NOT_VALID: "client_identifier_not_valid",
    rc.BAD_USER_NAME_OR_PASSWORD: "bad_username_or_password",
    rc.NOT_AUTHORIZED: "not_authorized",
    rc.SERVER_UNAVAILABLE: "server_unavailable",
    rc.SERVER_BUSY: "server_busy",
    rc.BANNED: "banned",
    rc.SERVER_SHUTTING_DOWN: "server_shutting_down",
    rc.BAD_AUTHENTICATION_METHOD: "bad_authentication_method",
    rc.TOPIC_NAME_INVALID: "topic_name_invalid",
    rc.PACKET_TOO_LARGE: "packet_too_large",
    rc.QUOTA_EXCEEDED: "quota_exceeded",
    rc.PAYLOAD_FORMAT_INVALID: "payload_format_invalid",
    rc.RETAIN_NOT_SUPPORTED: "retain_not_supported",
    rc.QOS_NOT_SUPPORTED: "qos_not_supported",
    rc.USE_ANOTHER_SERVER: "use_another_server",
    rc.SERVER_MOVED: "server_moved",
    rc.CONNECTION_RATE_EXCEEDED: "connection_rate_exceeded",
}

# cJSON's unformatted output: no spaces, non-ASCII written as UTF-8, control characters
# (NUL included) as \u00XX, which is what json's own string encoder does. The bodies are
# filled templates: the key order is NanoMQ's by construction, and no dict is built per event.
_string = json.encoder.encode_basestring


def _username(name: str | None) -> str:
    return _string(UNDEFINED if name is None else name)


def connack_body(client: ClientInfo, reason_code: int) -> bytes:
    return (f'{{"proto_ver":{client.protocol_version:d},"keepalive":{client.keepalive:d},'
            f'"conn_ack":{_string(CONNACK_REASONS.get(reason_code, "fail"))},'
            f'"username":{_username(client.username)},"clientid":{_string(client.client_id)},'
            f'"action":"{CONNACK}"}}').encode()


def disconnected_body(client: ClientInfo, reason: str) -> bytes:
    return (f'{{"reason":{_string(reason)},"username":{_username(client.username)},'
            f'"clientid":{_string(client.client_id)},"action":"{DISCONNECTED}"}}').encode()


def publish_body(message: Message, payload: str) -> bytes:
    """`payload` is already encoded per `body.encoding`."""
    return (f'{{"ts":{message.timestamp_ms:d},"topic":{_string(message.topic)},'
            f'"retain":{"true" if message.retain else "false"},"qos":{message.qos:d},'
            f'"action":"{PUBLISH}","from_username":{_username(message.publisher_username)},'
            f'"from_client_id":{_string(message.publisher_id)},"payload":{_string(payload)}}}').encode()


# -- EMQX's events ---------------------------------------------------------------------------

def _who(client: ClientInfo) -> str:
    return f'"clientid":{_string(client.client_id)},"username":{_username(client.username)}'


def _connection(client: ClientInfo) -> str:
    return (f'{_who(client)},"ipaddress":{_string(str(client.peer[0]))},"keepalive":{client.keepalive:d},'
            f'"proto_ver":{client.protocol_version:d}')


def connect_body(client: ClientInfo) -> bytes:
    return f'{{"action":"{CONNECT}",{_connection(client)}}}'.encode()


def connected_body(client: ClientInfo, connected_at_ms: int) -> bytes:
    return f'{{"action":"{CONNECTED}",{_connection(client)},"connected_at":{connected_at_ms:d}}}'.encode()


def _options(qos: int, no_local: bool, retain_as_published: bool, retain_handling: int) -> str:
    # EMQX's subscription options map: qos, No Local, Retain As Published, Retain Handling.
    return f'"qos":{qos:d},"nl":{int(no_local):d},"rap":{int(retain_as_published):d},"rh":{retain_handling:d}'


def subscribe_body(client: ClientInfo, subscription) -> bytes:
    """`subscription`: the SUBSCRIBE's `Subscription` for one filter."""
    s = subscription
    return (f'{{"action":"{SUBSCRIBE}",{_who(client)},"topic":{_string(s.topic_filter)},'
            f'"opts":{{{_options(s.qos, s.no_local, s.retain_as_published, s.retain_handling)}}}}}').encode()


def subscribed_body(client: ClientInfo, subscription, is_new: bool) -> bytes:
    s = subscription
    return (f'{{"action":"{SUBSCRIBED}",{_who(client)},"topic":{_string(s.topic_filter)},'
            f'"opts":{{{_options(s.qos, s.no_local, s.retain_as_published, s.retain_handling)},'
            f'"is_new":{"true" if is_new else "false"}}}}}').encode()


def unsubscribe_body(client: ClientInfo, topic_filter: str) -> bytes:
    return f'{{"action":"{UNSUBSCRIBE}",{_who(client)},"topic":{_string(topic_filter)},"opts":{{}}}}'.encode()


def unsubscribed_body(client: ClientInfo, topic_filter: str) -> bytes:
    return f'{{"action":"{UNSUBSCRIBED}",{_who(client)},"topic":{_string(topic_filter)}}}'.encode()


def terminated_body(client: ClientInfo, reason: str) -> bytes:
    return f'{{"action":"{TERMINATED}",{_who(client)},"reason":{_string(reason)}}}'.encode()


def _message(message: Message, qos: int, retain: bool, payload: str) -> str:
    return (f'"from_client_id":{_string(message.publisher_id)},"from_username":{_username(message.publisher_username)},'
            f'"topic":{_string(message.topic)},"qos":{qos:d},"retain":{"true" if retain else "false"},'
            f'"payload":{_string(payload)},"ts":{message.timestamp_ms:d}')


def delivered_body(client: ClientInfo, message: Message, qos: int, retain: bool, payload: str) -> bytes:
    """`client` is the subscriber; `qos` and `retain` as the PUBLISH to it carried them."""
    return f'{{"action":"{DELIVERED}",{_who(client)},{_message(message, qos, retain, payload)}}}'.encode()


def acked_body(client: ClientInfo, message: Message, qos: int, retain: bool, payload: str) -> bytes:
    return f'{{"action":"{ACKED}",{_who(client)},{_message(message, qos, retain, payload)}}}'.encode()


def dropped_body(message: Message, reason: str, payload: str) -> bytes:
    """Not in emqx_web_hook: EMQX's message.dropped hook (rule engine `$events/message_dropped`)
    as a message_publish body with its `reason`."""
    return (f'{{"action":"{DROPPED}",{_message(message, message.qos, message.retain, payload)},'
            f'"reason":{_string(reason)}}}').encode()
