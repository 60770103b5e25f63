"""`POST /api/v4/mqtt/publish` bodies, checked and turned into broker messages.

The fields are NanoMQ's (topic or comma-separated topics, clientid, payload, encoding, qos,
retain, properties). Unlike NanoMQ, a wrong field is refused with a message instead of
published half-right, and `encoding = base64` means the payload arrives base64-encoded and is
decoded before publishing (EMQX's meaning; NanoMQ encodes it instead).
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

from ..broker.message import Message
from ..broker.topics import valid_topic_name
from .errors import MISSING_KEY_REQUEST_PARAMS, REQ_PARAM_ERROR, ApiError, bad_request

DEFAULT_CLIENT_ID = "NanoMQ-HTTP-Client"  # NanoMQ's publisher id when the body names none
MAX_TOPICS_PER_REQUEST = 100
MAX_BATCH = 1000
_FIELDS = frozenset({"topic", "topics", "clientid", "payload", "encoding", "qos", "retain", "properties"})
_PROPERTIES = frozenset({"payload_format_indicator", "message_expiry_interval", "response_topic",
                         "correlation_data", "subscription_identifier", "content_type", "user_properties"})


@dataclass(frozen=True)
class PublishLimits:
    """What a published message may be: the same bounds as a client's PUBLISH."""

    max_payload: int  # mqtt.max_packet_size
    max_topic_length: int  # limits.max_topic_length
    max_topic_levels: int  # limits.max_topic_levels
    max_user_properties: int  # mqtt.property_size

    @classmethod
    def of(cls, config) -> PublishLimits:
        """From the `Config` in force, so a reloaded limit applies to the next request."""
        return cls(config.mqtt.max_packet_size, config.limits.max_topic_length,
                   config.limits.max_topic_levels, config.mqtt.property_size)


def messages_from(request, limits: PublishLimits) -> list[Message]:
    """One message per topic of one publish request; raises ApiError if anything is wrong."""
    if not isinstance(request, dict):
        raise bad_request(REQ_PARAM_ERROR, "a publish request is a JSON object")
    unknown = set(request) - _FIELDS
    if unknown:
        raise bad_request(REQ_PARAM_ERROR, f"unknown field(s) {', '.join(sorted(unknown))}")
    topics = _topics(request, limits)
    client_id = _string(request, "clientid", DEFAULT_CLIENT_ID)
    _utf8(client_id, "clientid")
    payload = _payload(request, limits)
    qos = request.get("qos", 0)
    if type(qos) is not int or qos not in (0, 1, 2):
        raise bad_request(REQ_PARAM_ERROR, f"qos must be 0, 1 or 2, not {qos!r}")
    retain = request.get("retain", False)
    if type(retain) is not bool:
        raise bad_request(REQ_PARAM_ERROR, f"retain must be true or false, not {retain!r}")
    properties, expiry = _properties(request.get("properties", {}), payload, limits)
    now_ms = int(time.time() * 1000)
    expires_at = time.monotonic() + expiry if expiry is not None else None
    return [Message(topic, payload, qos, retain, client_id, None, now_ms, dict(properties), expires_at)
            for topic in topics]


def batch_items(request) -> list:
    if not isinstance(request, list):
        raise bad_request(REQ_PARAM_ERROR, "publish_batch takes a JSON array of publish requests")
    if len(request) > MAX_BATCH:
        raise bad_request(REQ_PARAM_ERROR, f"at most {MAX_BATCH} messages per batch, not {len(request)}")
    return request


def batch_item_topic(item) -> str:
    """The `topic` NanoMQ echoes for a batch item: `topics` if given, else `topic`."""
    if isinstance(item, dict):
        for name in ("topics", "topic"):
            if isinstance(item.get(name), str):
                return item[name]
    return ""


def _string(request: dict, name: str, default: str | None = None) -> str | None:
    value = request.get(name, default)
    if value is not None and not isinstance(value, str):
        raise bad_request(REQ_PARAM_ERROR, f"{name} must be a string")
    return value


def _topics(request: dict, limits: PublishLimits) -> list[str]:
    topic, topics = _string(request, "topic"), _string(request, "topics")
    if topic is None and topics is None:
        raise bad_request(MISSING_KEY_REQUEST_PARAMS, "give topic or topics")
    names = [topic] if topic is not None else topics.split(",")
    if len(names) > MAX_TOPICS_PER_REQUEST:
        raise bad_request(REQ_PARAM_ERROR, f"at most {MAX_TOPICS_PER_REQUEST} topics per request")
    for name in names:
        _check_topic(name, "topic", limits)
    return names


def _utf8(text: str, field: str) -> bytes:
    """JSON may carry lone surrogates (\\ud800), which are not UTF-8: refuse them here, not
    when the broker encodes the PUBLISH for a subscriber."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise bad_request(REQ_PARAM_ERROR, f"{field} is not valid Unicode") from error


def _check_topic(name: str, field: str, limits: PublishLimits) -> None:
    _utf8(name, field)
    if not valid_topic_name(name) or "\x00" in name:
        raise bad_request(REQ_PARAM_ERROR, f"{field} {name!r} is not a topic name (empty, or has + or #)")
    if len(name) > limits.max_topic_length or name.count("/") >= limits.max_topic_levels:
        raise bad_request(REQ_PARAM_ERROR, f"{field} is over limits.max_topic_length or max_topic_levels")


def _payload(request: dict, limits: PublishLimits) -> bytes:
    if "payload" not in request:
        raise bad_request(MISSING_KEY_REQUEST_PARAMS, "payload is required")
    text = _string(request, "payload")
    if text is None:
        raise bad_request(REQ_PARAM_ERROR, "payload must be a string")
    encoding = _string(request, "encoding", "plain")
    if encoding == "plain":
        payload = _utf8(text, "payload")
    elif encoding == "base64":
        try:
            payload = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise bad_request(REQ_PARAM_ERROR, "payload is not valid base64") from error
    else:
        raise bad_request(REQ_PARAM_ERROR, f"encoding must be plain or base64, not {encoding!r}")
    if len(payload) > limits.max_payload:
        raise ApiError("413 Payload Too Large", REQ_PARAM_ERROR,
                       f"payload of {len(payload)} bytes is over mqtt.max_packet_size ({limits.max_payload})")
    return payload


def _properties(given, payload: bytes, limits: PublishLimits) -> tuple[dict, int | None]:
    """MQTT 5 properties in the broker's form, and the Message Expiry Interval apart (the
    broker counts it down per subscriber). Subscription Identifier is accepted, as NanoMQ
    documents it, and dropped: the broker sets it per matching subscription."""
    if not isinstance(given, dict):
        raise bad_request(REQ_PARAM_ERROR, "properties must be a JSON object")
    unknown = set(given) - _PROPERTIES
    if unknown:
        raise bad_request(REQ_PARAM_ERROR, f"unknown propert(ies) {', '.join(sorted(unknown))}")
    properties: dict = {}
    indicator = given.get("payload_format_indicator")
    if indicator is not None:
        if type(indicator) is not int or indicator not in (0, 1):
            raise bad_request(REQ_PARAM_ERROR, "payload_format_indicator must be 0 or 1")
        if indicator == 1:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as error:
                raise bad_request(REQ_PARAM_ERROR, "payload_format_indicator is 1 but the payload "
                                                   "is not UTF-8") from error
        properties["payload_format_indicator"] = indicator
    expiry = given.get("message_expiry_interval")
    if expiry is not None and (type(expiry) is not int or not 0 <= expiry <= 0xFFFFFFFF):
        raise bad_request(REQ_PARAM_ERROR, "message_expiry_interval must be seconds, 0 to 4294967295")
    for name in ("content_type", "response_topic", "correlation_data"):
        value = given.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise bad_request(REQ_PARAM_ERROR, f"{name} must be a string")
        if name == "response_topic":
            _check_topic(value, name, limits)
        encoded = _utf8(value, name)
        properties[name] = encoded if name == "correlation_data" else value
    user = given.get("user_properties")
    if user is not None:
        if not isinstance(user, dict):
            raise bad_request(REQ_PARAM_ERROR, "user_properties must be a JSON object of names and values")
        pairs = []
        for key, value in user.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (int, float)):
                value = str(value)
            elif not isinstance(value, str):
                raise bad_request(REQ_PARAM_ERROR, f"user property {key!r} must be a string, number or boolean")
            _utf8(key, "user property name")
            _utf8(value, f"user property {key!r}")
            pairs.append((key, value))
        if len(pairs) > limits.max_user_properties:
            raise bad_request(REQ_PARAM_ERROR, f"at most {limits.max_user_properties} user properties "
                                               "(mqtt.property_size)")
        if pairs:
            properties["user_property"] = pairs
    return properties, expiry
