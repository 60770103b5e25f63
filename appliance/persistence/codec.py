"""Rows of the persistence store: messages, wills and properties to and from column values.

Times are stored as wall-clock epoch seconds (the monotonic clock restarts with the
process), so a message expiry or a session expiry keeps counting while the broker is down.
MQTT 5 properties are JSON; binary values (Correlation Data) are tagged so they come back as
bytes, and User Properties as (name, value) pairs.
"""

from __future__ import annotations

import json
import time

from ..broker.hooks import ClientInfo
from ..broker.message import Message
from ..broker.session import LastWill
from ..mqtt.packets import Will


def wall(monotonic: float | None) -> float | None:
    """A time.monotonic() deadline as epoch seconds."""
    return None if monotonic is None else time.time() + (monotonic - time.monotonic())


def monotonic(wall_time: float | None) -> float | None:
    return None if wall_time is None else time.monotonic() + (wall_time - time.time())


def _plain(value):
    if isinstance(value, (bytes, bytearray)):
        return {"b": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _typed(name: str, value):
    if isinstance(value, dict) and "b" in value:
        return bytes.fromhex(value["b"])
    if name == "user_property":
        return [tuple(pair) for pair in value]
    if isinstance(value, list):
        return [_typed("", item) for item in value]
    return value


def dump_properties(properties: dict) -> str | None:
    return json.dumps({name: _plain(value) for name, value in properties.items()}) if properties else None


def load_properties(text: str | None) -> dict:
    return {name: _typed(name, value) for name, value in json.loads(text).items()} if text else {}


# A message's columns: topic, payload, qos, retain, publisher_id, publisher_username,
# timestamp_ms, properties, expires_at (wall).
MESSAGE_COLUMNS = "topic, payload, qos, retain, publisher_id, publisher_username, timestamp_ms, properties, expires"


def message_values(message: Message) -> tuple:
    return (message.topic, message.payload, message.qos, int(message.retain), message.publisher_id,
            message.publisher_username, message.timestamp_ms, dump_properties(message.properties),
            wall(message.expires_at))


def message_from(row) -> Message:
    topic, payload, qos, retain, publisher_id, username, timestamp_ms, properties, expires = row
    return Message(topic, bytes(payload), qos, bool(retain), publisher_id, username, timestamp_ms,
                   load_properties(properties), monotonic(expires))


def dump_will(will: LastWill | None) -> str | None:
    if will is None:
        return None
    w, info = will.will, will.publisher
    return json.dumps({"topic": w.topic, "payload": w.payload.hex(), "qos": w.qos, "retain": w.retain,
                       "properties": json.loads(dump_properties(w.properties) or "{}"),
                       "client_id": info.client_id, "username": info.username,
                       "protocol_version": info.protocol_version, "keepalive": info.keepalive,
                       "peer": list(info.peer) if info.peer else None})


def load_will(text: str | None) -> LastWill | None:
    if not text:
        return None
    d = json.loads(text)
    properties = {name: _typed(name, value) for name, value in d["properties"].items()}
    info = ClientInfo(d["client_id"], d["username"], d["protocol_version"], d["keepalive"],
                      tuple(d["peer"]) if d["peer"] else ())
    return LastWill(Will(d["topic"], bytes.fromhex(d["payload"]), d["qos"], d["retain"], properties), info)
