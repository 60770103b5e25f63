"""The JSON bodies NanoMQ POSTs, byte for byte: same keys, same key order, compact, UTF-8.

NanoMQ builds them with cJSON in the order below; a receiver written for NanoMQ must not
see a difference, except where NanoMQ emits invalid JSON or loses data (see the spec).
"""

from __future__ import annotations

import json

from appliance.broker.hooks import ClientInfo
from appliance.broker.message import Message
from appliance.mqtt import reason_codes as rc

CONNACK = "client_connack"
DISCONNECTED = "client_disconnected"
PUBLISH = "message_publish"

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
